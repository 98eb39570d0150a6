/**
 * Run keys and readable names. A key is a hash of the canonical resolved run config, so it
 * does not depend on key order, number spelling (1e-3 vs 0.001) or where a value came from
 * (file, extends, --set, sweep). Settings that do not change what is trained are left out:
 * name, description, tracking, launcher (where it trains), the end-of-run evaluation (thresholds, TTA: `exp evaluate` redoes
 * it on demand), training.require_gpu and checkpoint.every_minutes (a resume is exact). So
 * renaming, re-pointing tracking, or a newer exp that adds such a setting keeps the keys, and a
 * sweep run again after an upgrade does not retrain its points.
 */
import { createHash } from 'node:crypto';
import { canonicalJson } from '../util/object.js';
import type { RunConfig } from '../config/normalise.js';

const NOT_IN_KEY = ['name', 'description', 'tracking', 'evaluation', 'launcher'] as const;
const NOT_IN_KEY_NESTED = [
  ['training', 'require_gpu'],
  ['checkpoint', 'every_minutes'],
] as const;

export function runKey(config: RunConfig): string {
  const keyed: Record<string, unknown> = { ...config };
  for (const k of NOT_IN_KEY) delete keyed[k];
  for (const [section, k] of NOT_IN_KEY_NESTED) {
    const inner = keyed[section];
    if (inner && typeof inner === 'object') {
      const copy: Record<string, unknown> = { ...(inner as Record<string, unknown>) };
      delete copy[k];
      keyed[section] = copy;
    }
  }
  return createHash('sha256').update(canonicalJson(keyed)).digest('hex').slice(0, 12);
}

/** Hash of any JSON-like value (sweep ids, split hashes). */
export function hashOf(value: unknown, length = 12): string {
  return createHash('sha256').update(canonicalJson(value)).digest('hex').slice(0, length);
}

function formatValue(v: unknown): string {
  if (typeof v === 'number') return Number.isInteger(v) ? String(v) : String(Number(v.toPrecision(4)));
  if (typeof v === 'string') return v.replace(/^.*[\\/]/, '');
  return JSON.stringify(v);
}

/**
 * A short name from the values that vary, e.g. `learning_rate=0.001,optimizer=sgd`.
 * Each path is shortened to its last segment unless that would be ambiguous.
 */
export function pointName(params: Readonly<Record<string, unknown>>, fallback: string): string {
  const paths = Object.keys(params);
  if (paths.length === 0) return fallback;
  const short = (p: string): string => {
    const parts = p.split('.');
    for (let n = 1; n <= parts.length; n++) {
      const s = parts.slice(-n).join('.');
      if (paths.filter((q) => q === s || q.endsWith(`.${s}`)).length === 1) return s;
    }
    return p;
  };
  const name = paths.map((p) => `${short(p)}=${formatValue(params[p])}`).join(',');
  return name.replace(/[^A-Za-z0-9._=,+-]/g, '_').slice(0, 120);
}
