/**
 * The decoded-pixel cache: one raw uint8 file per (dataset fingerprint, size, kernel), plus
 * a small JSON sidecar with the row names and decode failures. The full Planet set at
 * 128x128 is about 2 GB, so it is read in chunks into one buffer (readFileSync stops at 2 GiB).
 */
import { closeSync, existsSync, fstatSync, openSync, readSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { readJson, writeFileAtomic, writeJsonAtomic } from '../util/fsx.js';

export const defaultCacheDir = (env: NodeJS.ProcessEnv = process.env): string =>
  env.EXP_CACHE_DIR ?? join(env.XDG_CACHE_HOME ?? join(homedir(), '.cache'), 'exp', 'decoded');

export const cachePath = (dir: string, fingerprint: string, size: number, kernel: string): string =>
  join(dir, `${fingerprint}-${size}-${kernel}-v2.u8`);

interface Sidecar { version: 1; count: number; size: number; names: string[]; failures: [number, string][] }

export function readCache(path: string, count: number, size: number): { pixels: Buffer; failures: Map<number, string> } | undefined {
  const meta = readJson<Sidecar>(`${path}.json`);
  if (!meta || meta.version !== 1 || meta.count !== count || meta.size !== size || !existsSync(path)) return undefined;
  const fd = openSync(path, 'r');
  try {
    const bytes = count * size * size * 3;
    if (fstatSync(fd).size !== bytes) return undefined;
    const pixels = Buffer.allocUnsafe(bytes);
    const chunk = 1 << 28;
    for (let off = 0; off < bytes;) off += readSync(fd, pixels, off, Math.min(chunk, bytes - off), off);
    return { pixels, failures: new Map(meta.failures) };
  } finally {
    closeSync(fd);
  }
}

export function writeCache(path: string, pixels: Buffer, failures: Map<number, string>, names: string[]): void {
  writeFileAtomic(path, pixels);
  // The sidecar goes last: a cache entry without one is never read.
  const size = Math.round(Math.sqrt(pixels.length / names.length / 3));
  writeJsonAtomic(`${path}.json`, { version: 1, count: names.length, size, names, failures: [...failures] } satisfies Sidecar);
}
