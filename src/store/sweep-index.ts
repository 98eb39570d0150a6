/**
 * A sweep folder's index.json (its points and identity), read bounded and checked: a
 * hand-edited or foreign index is RUN_FILE_CORRUPT naming the file and the field. Apart from
 * store/sweep.ts so that run.ts (a legacy folder's point.json is made from it) can read it
 * without importing the plan writer.
 */
import { StoreError } from '../errors.js';
import { writeJsonAtomic } from '../util/fsx.js';
import { fieldProblem, readCheckedJson, type Fields } from './check.js';
import { sweepPath } from './layout.js';
import type { SweepIndex } from './types.js';

const INDEX_FIELDS: Fields = { experiment: 'string', sweep: 'string', uid: 'string?', file: 'string?', created: 'string?', points: 'array' };
const ENTRY_FIELDS: Fields = { index: 'number', key: 'string', name: 'string', params: 'object', dir: 'string' };
const INDEX_FIX = "restore it from a copy, or plan the sweep again with 'exp run FILE --dry-run' (its run folders keep their files)";

/** The sweep's index.json, or undefined when it has none. */
export function readSweepIndex(sweepDir: string): SweepIndex | undefined {
  const file = sweepPath(sweepDir, 'index');
  const index = readCheckedJson<SweepIndex>(file, 'index.json', INDEX_FIELDS, INDEX_FIX);
  for (const [i, p] of (index?.points ?? []).entries()) {
    const problem = fieldProblem(p, ENTRY_FIELDS);
    if (problem !== undefined)
      throw new StoreError({ code: 'RUN_FILE_CORRUPT', message: `${file} is damaged: point ${i}: ${problem}`, file, fix: INDEX_FIX, exit: 'failed' });
  }
  return index;
}

export const writeSweepIndex = (sweepDir: string, index: SweepIndex): void => writeJsonAtomic(sweepPath(sweepDir, 'index'), index);
