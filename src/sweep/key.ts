/**
 * Run keys and readable names. A key is a hash of the canonical resolved run config, so it
 * does not depend on key order, number spelling (1e-3 vs 0.001) or where a value came from
 * (file, extends, --set, sweep). Settings that do not change what is trained are left out:
 * name, description, tracking, launcher (where it trains), the end-of-run evaluation (thresholds, TTA: `exp evaluate` redoes
 * it on demand), training.require_gpu, checkpoint.every_minutes (a resume is exact) and the feature
 * cache's enabled and max_gb (a run from the float32 cache is the run without it; float16 storage
 * rounds the features, so `dtype: float16` is in the key and the default float32 is not). So
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
  ['feature_cache', 'enabled'],
  ['feature_cache', 'max_gb'],
] as const;
/** Left out at their default value only, so keys made before the setting existed stay the same. */
const DEFAULT_NOT_IN_KEY = [['feature_cache', 'dtype', 'float32']] as const;

/** Drops `section.k` (only when it holds `only`, if given) from a shallow copy's section; an emptied section goes too. */
function dropNested(keyed: Record<string, unknown>, section: string, k: string, only?: unknown): void {
  const inner = keyed[section];
  if (!inner || typeof inner !== 'object') return;
  const copy: Record<string, unknown> = { ...(inner as Record<string, unknown>) };
  if (only === undefined || copy[k] === only) delete copy[k];
  // A section left empty goes too: it was not there before its settings existed.
  if (Object.keys(copy).length === 0) delete keyed[section];
  else keyed[section] = copy;
}

/**
 * The feature cache's settings that train the same run (on/off, bound, float32) left out of a
 * config: for run keys and sweep ids alike, so adding the cache changed neither.
 */
export function withoutExactCacheSettings<T extends object>(config: T): T {
  const keyed = { ...config } as Record<string, unknown>;
  for (const [section, k] of NOT_IN_KEY_NESTED) if (section === 'feature_cache') dropNested(keyed, section, k);
  for (const [section, k, value] of DEFAULT_NOT_IN_KEY) dropNested(keyed, section, k, value);
  return keyed as T;
}

export function runKey(config: RunConfig): string {
  const keyed: Record<string, unknown> = { ...config };
  for (const k of NOT_IN_KEY) delete keyed[k];
  for (const [section, k] of NOT_IN_KEY_NESTED) dropNested(keyed, section, k);
  for (const [section, k, value] of DEFAULT_NOT_IN_KEY) dropNested(keyed, section, k, value);
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
