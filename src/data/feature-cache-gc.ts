/**
 * Listing, removing and bounding the feature cache (exp cache ls|rm|gc, and each run's start):
 * least recently used entries go first (an entry's mtime is its LRU clock: set when written,
 * refreshed by reads at most hourly). Leftover temporary files of dead writers go too.
 */
import { lstatSync, readdirSync, rmSync, unlinkSync } from 'node:fs';
import { join } from 'node:path';
import { readJson } from '../util/fsx.js';
import type { FeatureKeyParts } from './feature-cache.js';

export interface KeyInfo {
  key: string;
  dir: string;
  /** key.json's parts; undefined when it is missing or unreadable. */
  parts: (FeatureKeyParts & { key: string }) | undefined;
  entries: number;
  bytes: number;
  /** The newest entry's mtime (ms), 0 when empty. */
  lastUsed: number;
}

interface EntryStat {
  path: string;
  bytes: number;
  mtime: number;
}

/** A temporary file older than this belongs to a dead writer. */
const TMP_STALE_MS = 60 * 60_000;

const isKeyName = (name: string): boolean => /^[0-9a-f]{16}$/.test(name);

function listDir(dir: string): string[] {
  try {
    return readdirSync(dir);
  } catch {
    return [];
  }
}

/** Every entry file of one key (and removes stale temporaries on the way). */
function scanKey(dir: string): EntryStat[] {
  const out: EntryStat[] = [];
  for (const v of listDir(dir).filter((n) => /^v\d+$/.test(n))) {
    for (const name of listDir(join(dir, v))) {
      const path = join(dir, v, name);
      let st;
      try {
        st = lstatSync(path);
      } catch {
        continue;
      }
      if (!st.isFile()) continue;
      if (name.endsWith('.feat')) out.push({ path, bytes: st.size, mtime: st.mtimeMs });
      else if (name.endsWith('.tmp') && Date.now() - st.mtimeMs > TMP_STALE_MS) unlinkQuietly(path);
    }
  }
  return out;
}

function unlinkQuietly(path: string): boolean {
  try {
    unlinkSync(path);
    return true;
  } catch {
    return false;
  }
}

/** The keys under `root`, each with its size and entry count. */
export function listKeys(root: string): KeyInfo[] {
  return listDir(root)
    .filter(isKeyName)
    .map((key) => {
      const dir = join(root, key);
      const entries = scanKey(dir);
      return {
        key,
        dir,
        parts: readJson<FeatureKeyParts & { key: string }>(join(dir, 'key.json'), 1 << 20),
        entries: entries.length,
        bytes: entries.reduce((a, e) => a + e.bytes, 0),
        lastUsed: entries.reduce((a, e) => Math.max(a, e.mtime), 0),
      };
    });
}

/** Removes one key's folder (only a folder named like a key, inside root). */
export function removeKey(root: string, key: string): boolean {
  if (!isKeyName(key)) return false;
  const dir = join(root, key);
  try {
    if (!lstatSync(dir).isDirectory()) return false;
  } catch {
    return false;
  }
  rmSync(dir, { recursive: true, force: true });
  return true;
}

export interface GcResult {
  bytesBefore: number;
  bytesAfter: number;
  removed: number;
}

/**
 * Brings the cache under `maxBytes`, removing least recently used entries first until it is
 * at `target` (default 90% of the bound, so a run does not evict again on its next write).
 */
export function boundCache(root: string, maxBytes: number, target = 0.9 * maxBytes): GcResult {
  const all = listDir(root)
    .filter(isKeyName)
    .flatMap((k) => scanKey(join(root, k)));
  const bytesBefore = all.reduce((a, e) => a + e.bytes, 0);
  let bytes = bytesBefore;
  let removed = 0;
  if (bytes > maxBytes) {
    all.sort((a, b) => a.mtime - b.mtime);
    for (const e of all) {
      if (bytes <= target) break;
      if (unlinkQuietly(e.path)) {
        bytes -= e.bytes;
        removed++;
      }
    }
  }
  return { bytesBefore, bytesAfter: bytes, removed };
}
