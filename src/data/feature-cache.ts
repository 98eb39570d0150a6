/**
 * The shared feature cache on disk: the frozen front's output for one image in one augmentation
 * view, one file per (key, view, image), beside the decoded-image cache ($EXP_CACHE_DIR/features).
 * No TensorFlow here: `exp cache` reads it from the light side.
 *
 *   <root>/<key16>/key.json          what the key covers (fingerprint, split, size, kernel, ...)
 *   <root>/<key16>/v<view>/<i>.feat  32-byte header (magic, version, image, view, values, CRC-32, bytes per value)
 *                                    + the values, float32 or float16 LE (the key's dtype)
 *
 * Why one file per entry rather than shards with an index: an entry is created whole with
 * write-to-temp + link (which never replaces), so two processes that compute the same entry
 * cannot tear it and no index must be kept consistent across processes; eviction is an unlink;
 * a read is one bounded pread of ~128 KiB (Planet at 128 px), so the cache is streamed and never
 * held in RAM. The cost is an inode per entry, small beside entries of 8 KiB and more.
 * Entries are not fsynced: a torn entry after a crash fails its checksum and is recomputed.
 */
import { closeSync, fstatSync, linkSync, lstatSync, mkdirSync, openSync, readSync, statSync, unlinkSync, utimesSync, writeSync } from 'node:fs';
import { createHash } from 'node:crypto';
import { hostname, homedir } from 'node:os';
import { join } from 'node:path';
import { crc32 } from 'node:zlib';
import { readJson, writeJsonAtomic } from '../util/fsx.js';
import { fromFloat16, toFloat16 } from './float16.js';

/** $EXP_CACHE_DIR/features, or ~/.cache/exp/features beside ~/.cache/exp/decoded. */
export const featureCacheRoot = (env: NodeJS.ProcessEnv = process.env): string =>
  env.EXP_CACHE_DIR ? join(env.EXP_CACHE_DIR, 'features') : join(env.XDG_CACHE_HOME ?? join(homedir(), '.cache'), 'exp', 'features');

/** Everything that changes the frozen front's output for an image. */
export interface FeatureKeyParts {
  version: 1;
  fingerprint: string;
  split: string;
  image_size: number;
  resize: string;
  preprocessing: string;
  /** MD5 of the base weights file, or `random:<seed>` for a seeded random init. */
  weights: string;
  /** Layers in the frozen front, and the blocks that train (for people reading key.json). */
  frozen_layers: number;
  trainable_blocks: number[];
  /** The backend's numeric kind: entries written by one backend are not used by another. */
  backend: string;
  dtype: FeatureDtype;
  /** The front's output shape [h, w, c]. */
  shape: number[];
}

/** float32 is what the frozen blocks compute; float16 halves the disk and rounds each value to 11 significant bits. */
export type FeatureDtype = 'float32' | 'float16';
const bytesPer = (dtype: FeatureDtype): number => (dtype === 'float16' ? 2 : 4);

export const keyOf = (p: FeatureKeyParts): string => createHash('sha256').update(JSON.stringify(p)).digest('hex').slice(0, 16);

const MAGIC = 0x46505845; // 'EXPF' little-endian
const HEADER = 32;
const ENTRY_EXT = '.feat';
const CLAIM_EXT = '.claim';
const KEY_FILE = 'key.json';
/** A claim older than this is taken to be a dead writer's (another host's; on this host a dead pid is seen at once). */
const CLAIM_STALE_MS = 10 * 60_000;
/** A read refreshes an entry's mtime (the LRU clock) at most this often, so reads stay one syscall. */
const TOUCH_EVERY_MS = 60 * 60_000;

export const keyDir = (root: string, key: string): string => join(root, key);
export const entryPath = (root: string, key: string, view: number, image: number): string => join(root, key, `v${view}`, `${image}${ENTRY_EXT}`);

/** Creates the key's folder and its key.json (once; concurrent writers write the same text). */
export function openKey(root: string, key: string, parts: FeatureKeyParts, views: readonly number[]): void {
  for (const v of views) mkdirSync(join(root, key, `v${v}`), { recursive: true });
  if (readJson(join(root, key, KEY_FILE)) === undefined) writeJsonAtomic(join(root, key, KEY_FILE), { key, ...parts });
}

export type ReadResult = { ok: true } | { ok: false; missing: true } | { ok: false; missing: false; reason: string };

/** Reads one entry into `out` (exactly its length), checking header and checksum; a damaged entry is removed. */
export function readEntry(path: string, image: number, view: number, out: Float32Array, dtype: FeatureDtype = 'float32'): ReadResult {
  let fd: number;
  try {
    fd = openSync(path, 'r');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return { ok: false, missing: true };
    return { ok: false, missing: false, reason: (e as Error).message };
  }
  let reason: string | undefined;
  try {
    const st = fstatSync(fd);
    const size = out.length * bytesPer(dtype);
    if (!st.isFile()) reason = 'not a regular file';
    else if (st.size !== HEADER + size) reason = `${st.size} bytes, expected ${HEADER + size}`;
    else {
      const head = Buffer.alloc(HEADER);
      // float32 is read straight into `out`; float16 into its own buffer, decoded once checked.
      const body = dtype === 'float32' ? Buffer.from(out.buffer, out.byteOffset, out.byteLength) : Buffer.alloc(size);
      if (readSync(fd, head, 0, HEADER, 0) !== HEADER || readFull(fd, body, HEADER) !== size) reason = 'short read';
      else reason = checkHeader(head, image, view, out.length, dtype) ?? (crc32(body) !== head.readUInt32LE(20) ? 'checksum mismatch' : undefined);
      if (!reason && dtype === 'float16') fromFloat16(new Uint16Array(body.buffer, body.byteOffset, out.length), out);
      if (!reason && Date.now() - st.mtimeMs > TOUCH_EVERY_MS) touch(path);
    }
  } catch (e) {
    reason = (e as Error).message;
  } finally {
    closeSync(fd);
  }
  if (reason === undefined) return { ok: true };
  if (reason !== 'not a regular file') removeQuietly(path);
  return { ok: false, missing: false, reason };
}

function readFull(fd: number, buf: Buffer, pos: number): number {
  let off = 0;
  while (off < buf.length) {
    const n = readSync(fd, buf, off, buf.length - off, pos + off);
    if (n === 0) break;
    off += n;
  }
  return off;
}

function checkHeader(head: Buffer, image: number, view: number, values: number, dtype: FeatureDtype): string | undefined {
  if (head.readUInt32LE(0) !== MAGIC || head.readUInt32LE(4) !== 1) return 'not a feature entry (bad magic or version)';
  if (head.readUInt32LE(8) !== image || head.readUInt32LE(12) !== view || head.readUInt32LE(16) !== values) return 'header names another entry';
  // Entries written before float16 existed have 0 there: they are float32.
  if ((head.readUInt32LE(24) || 4) !== bytesPer(dtype)) return `stored as ${head.readUInt32LE(24) === 2 ? 'float16' : 'float32'}, expected ${dtype}`;
  return undefined;
}

function touch(path: string): void {
  try {
    const now = new Date();
    utimesSync(path, now, now);
  } catch {
    /* LRU order is a hint: a read-only cache still serves */
  }
}

function removeQuietly(path: string): void {
  try {
    unlinkSync(path);
  } catch {
    /* gone already, or a read-only cache: the entry is recomputed either way */
  }
}

/**
 * Writes one entry whole: to a temporary file, then linked to its name (link never replaces, so
 * a concurrent writer's entry stays as it is). Returns the bytes added (0 when it existed), or throws
 * the system error (ENOSPC, EACCES...) after removing the temporary file.
 */
export function writeEntry(path: string, image: number, view: number, data: Float32Array, dtype: FeatureDtype = 'float32'): number {
  const head = Buffer.alloc(HEADER);
  const stored = dtype === 'float16' ? toFloat16(data) : data;
  const body = Buffer.from(stored.buffer, stored.byteOffset, stored.byteLength);
  head.writeUInt32LE(MAGIC, 0);
  head.writeUInt32LE(1, 4);
  head.writeUInt32LE(image, 8);
  head.writeUInt32LE(view, 12);
  head.writeUInt32LE(data.length, 16);
  head.writeUInt32LE(crc32(body), 20);
  head.writeUInt32LE(bytesPer(dtype), 24);
  const tmp = `${path}.${process.pid}.${Math.random().toString(36).slice(2, 10)}.tmp`;
  try {
    const fd = openSync(tmp, 'wx');
    try {
      for (const buf of [head, body]) for (let off = 0; off < buf.length; ) off += writeSync(fd, buf, off, buf.length - off);
    } finally {
      closeSync(fd);
    }
    try {
      linkSync(tmp, path);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'EEXIST') return 0;
      throw e;
    }
    return HEADER + body.length;
  } finally {
    removeQuietly(tmp);
  }
}

/** Claims the right to compute an entry (O_EXCL); false when another live process holds it. */
export function claimEntry(path: string): boolean {
  const claim = path + CLAIM_EXT;
  for (let attempt = 0; attempt < 2; attempt++) {
    try {
      const fd = openSync(claim, 'wx');
      try {
        writeSync(fd, `${hostname()} ${process.pid}\n`);
      } catch (e) {
        // A full disk can take the name but not the text: leave no claim that nobody would release.
        closeSync(fd);
        removeQuietly(claim);
        throw e;
      }
      closeSync(fd);
      return true;
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
      if (!claimIsStale(claim)) return false;
      removeQuietly(claim);
    }
  }
  return false;
}

export const releaseClaim = (path: string): void => removeQuietly(path + CLAIM_EXT);

/** Whether a claim is still held by a live process. */
export function claimHeld(path: string): boolean {
  const claim = path + CLAIM_EXT;
  try {
    lstatSync(claim);
  } catch {
    return false;
  }
  return !claimIsStale(claim);
}

function claimIsStale(claim: string): boolean {
  try {
    const st = statSync(claim);
    const [host, pidText] = (readJsonless(claim) ?? '').trim().split(' ');
    if (host === hostname() && pidText) {
      try {
        process.kill(Number(pidText), 0);
      } catch (e) {
        return (e as NodeJS.ErrnoException).code === 'ESRCH';
      }
    }
    return Date.now() - st.mtimeMs > CLAIM_STALE_MS;
  } catch {
    return true;
  }
}

/** A claim file's text (at most 256 bytes). */
function readJsonless(path: string): string | undefined {
  const fd = openSync(path, 'r');
  try {
    const buf = Buffer.alloc(256);
    return buf.subarray(0, readSync(fd, buf, 0, 256, 0)).toString('utf8');
  } finally {
    closeSync(fd);
  }
}
