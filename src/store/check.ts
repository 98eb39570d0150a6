/**
 * Checking a record read from a run, sweep or ensemble folder before anyone uses it: a file
 * edited by hand or written by something else is a coded error naming the file, the field and
 * what to do, never a value cast to a type it does not have. Only what readers rely on is
 * checked (the fields' types, and the few fields a record cannot be without); unknown fields
 * are kept, so a file written by a newer exp still reads.
 */
import { StoreError } from '../errors.js';
import { readRecordJson } from '../util/fsx.js';
import type { RunStatus } from './types.js';

/** A field's kind; `?` after it: the field may be absent; `|null`: it may be null. */
type Kind = 'string' | 'number' | 'boolean' | 'object' | 'array' | 'status' | 'strings' | 'numbers' | 'record<string>';
export type FieldSpec = Kind | `${Kind}?` | `${Kind}|null` | `${Kind}|null?`;
export type Fields = Record<string, FieldSpec>;

const STATUSES: readonly RunStatus[] = ['planned', 'running', 'completed', 'failed', 'killed', 'pruned'];

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

const KINDS: Record<Kind, { test: (v: unknown) => boolean; words: string }> = {
  string: { test: (v) => typeof v === 'string', words: 'a string' },
  number: { test: (v) => typeof v === 'number' && Number.isFinite(v), words: 'a number' },
  boolean: { test: (v) => typeof v === 'boolean', words: 'true or false' },
  object: { test: isObject, words: 'an object' },
  array: { test: Array.isArray, words: 'a list' },
  status: { test: (v) => typeof v === 'string' && (STATUSES as readonly string[]).includes(v), words: `one of ${STATUSES.join(', ')}` },
  strings: { test: (v) => Array.isArray(v) && v.every((x) => typeof x === 'string'), words: 'a list of strings' },
  numbers: { test: (v) => Array.isArray(v) && v.every((x) => typeof x === 'number' && Number.isFinite(x)), words: 'a list of numbers' },
  'record<string>': { test: (v) => isObject(v) && Object.values(v).every((x) => typeof x === 'string'), words: 'an object of strings' },
};

/** The first field of `value` that does not match `fields`, in words, or undefined when all do. */
export function fieldProblem(value: unknown, fields: Fields): string | undefined {
  if (!isObject(value)) return `it is ${Array.isArray(value) ? 'a list' : value === null ? 'null' : `a ${typeof value}`}, not an object`;
  for (const [name, spec] of Object.entries(fields)) {
    const optional = spec.endsWith('?');
    const nullable = spec.includes('|null');
    const kind = spec.replace('?', '').replace('|null', '') as Kind;
    const v = value[name];
    if (v === undefined) {
      if (optional) continue;
      return `it has no '${name}' (${KINDS[kind].words})`;
    }
    if (v === null && nullable) continue;
    if (!KINDS[kind].test(v)) return `its '${name}' is ${JSON.stringify(v)?.slice(0, 60) ?? String(v)}, not ${KINDS[kind].words}${nullable ? ' or null' : ''}`;
  }
  return undefined;
}

/** Throws RUN_FILE_CORRUPT naming `file` when `value` does not match `fields`; returns it typed otherwise. */
export function checkRecord<T>(value: unknown, file: string, fields: Fields, fix: string): T {
  const problem = fieldProblem(value, fields);
  if (problem !== undefined) throw new StoreError({ code: 'RUN_FILE_CORRUPT', message: `${file} is damaged: ${problem}`, file, fix, exit: 'failed' });
  return value as T;
}

/**
 * A folder's JSON record, read bounded and regular-file-only and checked: undefined when the
 * file is absent; RUN_FILE_CORRUPT (or the read's own code) naming it when it is not whole.
 */
export function readCheckedJson<T>(file: string, what: string, fields: Fields, fix: string, maxBytes?: number): T | undefined {
  const raw = readRecordJson(file, what, fix, maxBytes);
  return raw === undefined ? undefined : checkRecord<T>(raw, file, fields, fix);
}
