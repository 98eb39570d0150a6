/**
 * Stage 2: check a loaded document against the schema. Every ajv error becomes a Problem
 * with the file, line and column where the offending key or value was written, and a
 * message that names what was expected and what was found.
 */
import type { ErrorObject, ValidateFunction } from 'ajv';
import { pathId, type PathSegments, type SourceMap } from './load.js';
import { closest, type Problem, type ProblemCode } from './problem.js';
import { experimentSchema, keysAt, validator, type JsonSchema } from './schema.js';

/** Short rendering of a found value for messages. */
export function describe(value: unknown): string {
  if (value === null) return 'null';
  if (Array.isArray(value)) return `a list of ${value.length}`;
  if (typeof value === 'object') return 'a mapping';
  if (typeof value === 'string') return `string '${value.length > 40 ? value.slice(0, 37) + '...' : value}'`;
  return `${typeof value} ${String(value)}`;
}

function segmentsOf(instancePath: string): (string | number)[] {
  if (!instancePath) return [];
  return instancePath
    .slice(1)
    .split('/')
    .map((s) => s.replace(/~1/g, '/').replace(/~0/g, '~'))
    .map((s) => (/^\d+$/.test(s) ? Number(s) : s));
}

function valueAt(root: unknown, segments: PathSegments): unknown {
  let v: unknown = root;
  for (const s of segments) v = v !== null && typeof v === 'object' ? (v as Record<string | number, unknown>)[s] : undefined;
  return v;
}

/** The location of `segments`, or of the nearest ancestor that has one. */
export function locate(sources: SourceMap, segments: PathSegments, preferKey = false): { file: string; line: number; col: number } {
  for (let n = segments.length; n >= 0; n--) {
    const loc = sources.get(pathId(segments.slice(0, n)));
    if (loc) {
      const pos = preferKey && loc.key && n === segments.length ? loc.key : loc.value;
      return { file: loc.file, ...pos };
    }
  }
  return { file: '', line: 0, col: 0 };
}

/** Dotted rendering of a path; sweep keys that contain dots stay whole. */
export const dotted = (segments: PathSegments): string => segments.map(String).join('.');

function toProblem(err: ErrorObject, value: unknown, sources: SourceMap, fallbackFile: string, schema: JsonSchema): Problem {
  const segs = segmentsOf(err.instancePath);
  const found = valueAt(value, segs);
  const inSweep = segs[0] === 'sweep';
  let code: ProblemCode = 'INVALID';
  let path = segs;
  let preferKey = false;
  let message = err.message ?? 'is invalid';
  const p = err.params as Record<string, unknown>;
  switch (err.keyword) {
    case 'additionalProperties': {
      const key = String(p.additionalProperty);
      path = [...segs, key];
      preferKey = true;
      code = 'UNKNOWN_KEY';
      const allowed = keysAt(segs, schema);
      const guess = closest(key, allowed);
      message = `unknown key '${key}'` + (guess ? `; did you mean '${guess}'?` : allowed.length ? `; allowed keys here: ${allowed.join(', ')}` : '');
      break;
    }
    case 'required':
      code = 'REQUIRED';
      message = `missing required key '${String(p.missingProperty)}'; add it${segs.length ? ` under '${dotted(segs)}'` : ''}`;
      break;
    case 'type':
      code = 'TYPE';
      message = `expected ${String(p.type).replace(',', ' or ')}, found ${describe(found)}`;
      break;
    case 'minimum':
    case 'maximum':
    case 'exclusiveMinimum':
    case 'exclusiveMaximum': {
      code = 'RANGE';
      const op = { minimum: '>=', maximum: '<=', exclusiveMinimum: '>', exclusiveMaximum: '<' }[err.keyword];
      message = `expected a number ${op} ${String(p.limit)}, found ${describe(found)}`;
      break;
    }
    case 'enum':
      code = 'ENUM';
      message =
        `expected one of ${(p.allowedValues as unknown[]).map((v) => JSON.stringify(v)).join(', ')}, found ${describe(found)}` +
        (typeof found === 'string' ? ((g) => (g ? `; did you mean '${g}'?` : ''))(closest(found, (p.allowedValues as unknown[]).map(String))) : '');
      break;
    case 'pattern':
      code = 'PATTERN';
      message = `${describe(found)} does not match the required form ${String(p.pattern)}`;
      break;
    case 'minItems':
    case 'minProperties':
      code = inSweep ? 'EMPTY_SWEEP' : 'INVALID';
      message = inSweep ? `empty sweep ${err.keyword === 'minItems' ? 'list' : 'section'}: give at least one value, or remove the key` : `must not be empty`;
      break;
    case 'uniqueItems':
      message = `list has a repeated value (items ${String(p.j)} and ${String(p.i)}); remove the repeat`;
      break;
    default:
      message = `${message} (found ${describe(found)})`;
  }
  const loc = locate(sources, path, preferKey);
  return { code, message, path: dotted(path), file: loc.file || fallbackFile, line: loc.line, col: loc.col };
}

/** Validates a merged document against the experiment schema; returns all problems (empty when valid). */
export function validateDocument(value: unknown, sources: SourceMap, file: string): Problem[] {
  return validateWith(validator(), experimentSchema, value, sources, file);
}

/** Validates `value` with a compiled `validate` of `schema`; every error becomes a positioned Problem. */
export function validateWith(validate: ValidateFunction, schema: JsonSchema, value: unknown, sources: SourceMap, file: string): Problem[] {
  if (validate(value)) return [];
  const seen = new Set<string>();
  const problems: Problem[] = [];
  for (const err of validate.errors ?? []) {
    // `type: [object, null]` sections report both a type and a property error; keep the clearer one.
    const problem = toProblem(err, value, sources, file, schema);
    const id = `${problem.path}|${problem.code}|${problem.line}|${problem.col}`;
    if (!seen.has(id)) {
      seen.add(id);
      problems.push(problem);
    }
  }
  return problems;
}
