/**
 * Client-side checks and log-batch splitting for MLflow. Pure: no IO.
 *
 * The server rejects bad keys, but it silently truncates over-long param (6000) and tag (8000)
 * values, and params can never be changed once logged, so a truncated param could not even be
 * corrected later. The client therefore refuses over-long values with a 'validation' error
 * (log such a value as an artifact instead) rather than truncating it.
 */
import { MlflowError } from './http.js';
import type { BatchInput, Param, RunTag, WireBatch, WireMetric } from './types.js';

/** MLflow's limits (mlflow/utils/validation.py, checked against MLflow 3.17). */
export const LIMITS = {
  metricsPerBatch: 1000,
  paramsPerBatch: 100,
  tagsPerBatch: 100,
  itemsPerBatch: 1000,
  /** The server compares the request length to 1e6; we count UTF-8 bytes, which is never less. */
  batchBytes: 1_000_000,
  keyLength: 250,
  paramValueLength: 6000,
  tagValueLength: 8000,
} as const;

// MLflow's pattern is ^[/\w.\- :]*$ with Python's Unicode-aware \w (letters, digits, underscore).
const KEY_PATTERN = /^[/\p{L}\p{N}_.\- :]*$/u;

/**
 * Why `key` is not a valid metric, param or tag key, or undefined when it is. Besides the
 * pattern and length, MLflow requires keys to be normalised paths: not empty, no leading or
 * trailing '/', no '//' and no '.' or '..' segment, and not starting with '..'.
 */
export function keyProblem(key: string): string | undefined {
  if (typeof key !== 'string' || key.length === 0) return 'a key must be a non-empty string';
  if (!KEY_PATTERN.test(key))
    return `key '${key}' may only contain letters, digits, underscores (_), dashes (-), periods (.), spaces, colons (:) and slashes (/)`;
  if (key.length > LIMITS.keyLength) return `key '${key.slice(0, 40)}…' is ${key.length} characters; the limit is ${LIMITS.keyLength}`;
  const segments = key.split('/');
  if (key.startsWith('..') || segments.some((s) => s === '' || s === '.' || s === '..')) {
    return `key '${key}' must be a normalised path: no leading or trailing '/', no '//', no '.' or '..' parts`;
  }
  return undefined;
}

/** Why a metric value/step/timestamp is invalid, or undefined. NaN and ±Infinity are allowed. */
function metricProblem(key: string, value: unknown, step: unknown, timestamp: unknown): string | undefined {
  if (typeof value !== 'number') return `metric '${key}': value must be a number, got ${typeof value}`;
  if (typeof step !== 'number' || !Number.isSafeInteger(step)) return `metric '${key}': step must be an integer, got ${String(step)}`;
  if (typeof timestamp !== 'number' || !Number.isSafeInteger(timestamp) || timestamp < 0) {
    return `metric '${key}': timestamp must be a non-negative integer (ms since the epoch), got ${String(timestamp)}`;
  }
  return undefined;
}

/** Throws one 'validation' MlflowError that lists every problem (the first ten spelled out). */
export function throwProblems(route: string, problems: string[]): void {
  if (problems.length === 0) return;
  const shown = problems.slice(0, 10).join('; ');
  const more = problems.length > 10 ? `; and ${problems.length - 10} more` : '';
  throw new MlflowError({ code: 'MLFLOW_VALIDATION', route, errorCode: 'INVALID_PARAMETER_VALUE', message: `${shown}${more}` });
}

/** Checks a tag for runs/create or runs/set-tag; returns the problems found. */
export function tagProblems(key: string, value: unknown): string[] {
  const p: string[] = [];
  const kp = keyProblem(key);
  if (kp) p.push(`tag ${kp}`);
  if (typeof value !== 'string') p.push(`tag '${key}': value must be a string`);
  else if (value.length > LIMITS.tagValueLength)
    p.push(`tag '${key}': value is ${value.length} characters; the limit is ${LIMITS.tagValueLength} (MLflow would truncate it)`);
  return p;
}

const wireValue = (v: number): number | string => (Number.isNaN(v) ? 'NaN' : v === Infinity ? 'Infinity' : v === -Infinity ? '-Infinity' : v);

/** Validates a batch and converts it to wire items; throws a 'validation' MlflowError listing all problems. */
export function prepareBatch(input: BatchInput, now: number): { metrics: WireMetric[]; params: Param[]; tags: RunTag[] } {
  const problems: string[] = [];
  const metrics: WireMetric[] = [];
  for (const m of input.metrics ?? []) {
    const step = m.step ?? 0;
    const timestamp = m.timestamp ?? now;
    const p = keyProblem(m.key) ?? metricProblem(m.key, m.value, step, timestamp);
    if (p) problems.push(p.startsWith('metric') ? p : `metric ${p}`);
    else metrics.push({ key: m.key, value: wireValue(m.value), timestamp, step });
  }
  const params: Param[] = [];
  for (const [key, raw] of Object.entries(input.params ?? {})) {
    const kp = keyProblem(key);
    if (kp) {
      problems.push(`param ${kp}`);
      continue;
    }
    if (!['string', 'number', 'boolean'].includes(typeof raw)) {
      problems.push(`param '${key}': value must be a string, number or boolean`);
      continue;
    }
    const value = String(raw);
    if (value.length > LIMITS.paramValueLength) {
      problems.push(
        `param '${key}': value is ${value.length} characters; the limit is ${LIMITS.paramValueLength} (MLflow would truncate it; log it as an artifact instead)`,
      );
    } else params.push({ key, value });
  }
  const tags: RunTag[] = [];
  for (const [key, value] of Object.entries(input.tags ?? {})) {
    const p = tagProblems(key, value);
    if (p.length > 0) problems.push(...p);
    else tags.push({ key, value });
  }
  throwProblems('runs/log-batch', problems);
  return { metrics, params, tags };
}

const bytesOf = (x: unknown): number => Buffer.byteLength(JSON.stringify(x), 'utf8');

/**
 * Splits validated items into log-batch bodies within LIMITS. Each body takes params first,
 * then tags, then metrics, each up to its own limit, then as many of the rest as the item and
 * byte limits allow; order within each kind is kept. So 2500 metrics and 150 params take three
 * requests (100 params + 900 metrics, 50 + 950, 650). Every body serialises to at most
 * LIMITS.batchBytes.
 */
export function splitBatch(runId: string, items: { metrics: WireMetric[]; params: Param[]; tags: RunTag[] }): WireBatch[] {
  const base = bytesOf({ run_id: runId, metrics: [], params: [], tags: [] });
  const queues = [
    { kind: 'params', items: items.params, max: LIMITS.paramsPerBatch, next: 0 },
    { kind: 'tags', items: items.tags, max: LIMITS.tagsPerBatch, next: 0 },
    { kind: 'metrics', items: items.metrics, max: LIMITS.metricsPerBatch, next: 0 },
  ] as const satisfies readonly { kind: keyof Omit<WireBatch, 'run_id'>; items: readonly unknown[]; max: number; next: number }[];
  const q = queues.map((x) => ({ ...x, sizes: x.items.map((i) => bytesOf(i) + 1) })); // the item and at most one comma
  const out: WireBatch[] = [];
  while (q.some((x) => x.next < x.items.length)) {
    const body: WireBatch = { run_id: runId, metrics: [], params: [], tags: [] };
    let size = base;
    let count = 0;
    for (const x of q) {
      const list = body[x.kind] as unknown[];
      while (x.next < x.items.length && list.length < x.max && count < LIMITS.itemsPerBatch && size + x.sizes[x.next]! <= LIMITS.batchBytes) {
        list.push(x.items[x.next]);
        size += x.sizes[x.next]!;
        count++;
        x.next++;
      }
    }
    out.push(body);
  }
  return out;
}
