/**
 * File writes that never leave a half-written file behind: write to a temporary name in the
 * same folder, fsync, then rename (atomic on POSIX). Readers see the old or the new file.
 */
import {
  appendFileSync,
  closeSync,
  constants,
  fstatSync,
  fsyncSync,
  mkdirSync,
  openSync,
  readdirSync,
  readSync,
  renameSync,
  writeSync,
  existsSync,
  rmSync,
  statSync,
  lstatSync,
} from 'node:fs';
import { dirname, basename, join } from 'node:path';
import { StoreError } from '../errors.js';

let counter = 0;

/** What is at `path` when it is not a regular file or a folder, in words (following symlinks); undefined when absent or ordinary. */
function specialKind(path: string): string | undefined {
  let st;
  try {
    st = statSync(path);
  } catch {
    return undefined; // absent (or a dangling link, which the rename replaces)
  }
  if (st.isFile() || st.isDirectory()) return undefined;
  if (st.isFIFO()) return 'a FIFO (named pipe)';
  if (st.isCharacterDevice() || st.isBlockDevice()) return 'a device';
  if (st.isSocket()) return 'a socket';
  return 'not a regular file';
}

/**
 * Refuses to write over anything but a regular file (or nothing): the write-then-rename of
 * writeFileAtomic would replace a device node such as /dev/null, a FIFO or a socket with a
 * plain file, and a folder is never a file's target. Throws NOT_A_REGULAR_FILE naming `path`.
 */
export function checkWritableFile(path: string, what = 'file'): void {
  let dir = false;
  try {
    dir = statSync(path).isDirectory();
  } catch {
    dir = false;
  }
  const kind = dir ? 'a folder' : specialKind(path);
  if (kind === undefined) return;
  throw new StoreError({
    code: 'NOT_A_REGULAR_FILE',
    message: `${what} ${path} is ${kind}; exp writes only regular files and will not replace it`,
    file: path,
    fix: 'give the path of a new file (or of a file exp wrote before)',
  });
}

export function writeFileAtomic(path: string, data: string | Uint8Array): void {
  checkWritableFile(path);
  mkdirSync(dirname(path), { recursive: true });
  const tmp = join(dirname(path), `.${basename(path)}.${process.pid}.${counter++}.tmp`);
  const fd = openSync(tmp, 'w');
  try {
    const bytes = typeof data === 'string' ? Buffer.from(data) : data;
    // One write call may be short for large buffers (the kernel caps a write near 2 GiB).
    for (let off = 0; off < bytes.length;) off += writeSync(fd, bytes, off, Math.min(bytes.length - off, 1 << 30));
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
  renameSync(tmp, path);
}

export function writeJsonAtomic(path: string, value: unknown): void {
  writeFileAtomic(path, JSON.stringify(value, null, 2) + '\n');
}

/** exp's own JSON records are kilobytes to a few megabytes; a bigger one is not ours. */
export const MAX_JSON_BYTES = 64 * 2 ** 20;

/**
 * A JSON record, or undefined when it is missing or unusable (callers that tolerate a missing
 * record). Still bounded and regular-file-only: a symlink to /dev/zero is unusable, not read.
 */
export function readJson<T>(path: string, maxBytes = MAX_JSON_BYTES): T | undefined {
  try {
    return JSON.parse(readFileBounded(path, maxBytes).toString('utf8')) as T;
  } catch {
    return undefined;
  }
}

/**
 * A run folder's JSON record that must be whole when present: undefined when the file is
 * absent, else its parsed value; a file that is not a regular file, is too large or is not
 * JSON is a coded StoreError naming it (RUN_FILE_CORRUPT for bad JSON), with `fix`.
 */
export function readRecordJson(path: string, what: string, fix: string, maxBytes = MAX_JSON_BYTES): unknown {
  let text: string;
  try {
    text = readFileBounded(path, maxBytes, what).toString('utf8');
  } catch (e) {
    if (!existsSync(path) && !isDanglingLink(path)) return undefined;
    if (e instanceof StoreError) throw new StoreError({ code: e.code, message: e.message, file: path, fix, exit: 'failed', cause: e });
    throw e;
  }
  try {
    return JSON.parse(text) as unknown;
  } catch (e) {
    throw new StoreError({
      code: 'RUN_FILE_CORRUPT',
      message: `${what} ${path} is damaged: ${text.trim() === '' ? 'it is empty' : `not valid JSON (${(e as Error).message})`}`,
      file: path,
      fix,
      exit: 'failed',
    });
  }
}

function isDanglingLink(path: string): boolean {
  try {
    return lstatSync(path).isSymbolicLink();
  } catch {
    return false;
  }
}

/**
 * Replaces a folder: build it under a temp name, then swap it in with two renames. Readers
 * see the old folder or the new one; a crash between the renames leaves `target.old-*` (and
 * the complete `target.tmp-*`), never a half-written `target`: recoverSwap puts it right.
 */
export async function replaceDirAtomic(target: string, build: (tmpDir: string) => void | Promise<void>): Promise<void> {
  const tmp = `${target}.tmp-${process.pid}-${counter++}`;
  rmSync(tmp, { recursive: true, force: true });
  mkdirSync(tmp, { recursive: true });
  try {
    await build(tmp);
  } catch (e) {
    rmSync(tmp, { recursive: true, force: true });
    throw e;
  }
  const old = `${target}.old-${process.pid}-${counter++}`;
  const kind = specialKind(target);
  if (kind !== undefined || (existsSync(target) && !statSync(target).isDirectory())) {
    rmSync(tmp, { recursive: true, force: true });
    throw new StoreError({
      code: 'NOT_A_REGULAR_FILE',
      message: `${target} is ${kind ?? 'a file'}, not a folder; exp will not replace it`,
      file: target,
      fix: 'give the path of a new folder',
    });
  }
  if (existsSync(target)) renameSync(target, old);
  renameSync(tmp, target);
  rmSync(old, { recursive: true, force: true });
}

/**
 * Finishes or undoes a swap that a crash interrupted (see replaceDirAtomic): when `target` is
 * missing but `target.old-*` exists, the new folder `target.tmp-*` beside it was complete
 * (the swap starts only after it is built), so it becomes `target`; without it, the old one
 * comes back. Leftover temp folders of builds that never reached the swap are removed.
 */
export function recoverSwap(target: string): void {
  const dir = dirname(target);
  const name = basename(target);
  let entries: string[];
  try {
    entries = readdirSync(dir);
  } catch {
    return;
  }
  const olds = entries.filter((e) => e.startsWith(`${name}.old-`)).map((e) => join(dir, e));
  const tmps = entries.filter((e) => e.startsWith(`${name}.tmp-`)).map((e) => join(dir, e));
  if (!existsSync(target) && olds.length > 0) renameSync(tmps.length === 1 ? tmps[0]! : olds[0]!, target);
  for (const p of [...olds, ...tmps]) if (existsSync(p) && p !== target) rmSync(p, { recursive: true, force: true });
}

/** A user's small text file read with readFileBounded's checks; undefined when nothing is there. */
export const readTextIfPresent = (path: string, maxBytes: number, what: string): string | undefined =>
  existsSync(path) ? readFileBounded(path, maxBytes, what).toString('utf8') : undefined;

/**
 * Reads a user's file with bounds: only a regular file (a FIFO, a device such as /dev/zero, a
 * socket or a folder is refused, also behind a symlink), at most `maxBytes`. Opened without
 * blocking, so a FIFO cannot hang the process. Throws a coded StoreError naming the file.
 */
export function readFileBounded(path: string, maxBytes: number, what = 'file'): Buffer {
  let fd: number;
  try {
    fd = openSync(path, constants.O_RDONLY | constants.O_NONBLOCK);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') throw new StoreError({ code: 'NOT_A_REGULAR_FILE', message: `${what} ${path} does not exist`, file: path, fix: 'check the path' });
    throw new StoreError({ code: 'NOT_A_REGULAR_FILE', message: `cannot open ${what} ${path}: ${(e as Error).message}`, file: path, cause: e });
  }
  try {
    const st = fstatSync(fd);
    if (!st.isFile()) {
      const kind = st.isDirectory()
        ? 'a folder'
        : st.isFIFO()
          ? 'a FIFO (named pipe)'
          : st.isCharacterDevice() || st.isBlockDevice()
            ? 'a device'
            : st.isSocket()
              ? 'a socket'
              : 'not a regular file';
      throw new StoreError({
        code: 'NOT_A_REGULAR_FILE',
        message: `${what} ${path} is ${kind}, not a regular file`,
        file: path,
        fix: `point it at a regular ${what}`,
      });
    }
    if (st.size > maxBytes) {
      throw new StoreError({
        code: 'FILE_TOO_LARGE',
        message: `${what} ${path} is ${st.size} bytes, more than the ${maxBytes}-byte limit`,
        file: path,
        fix: `check that this is the right ${what}`,
      });
    }
    // Read to the limit plus one byte: a file that grows while we read is still bounded.
    const buf = Buffer.allocUnsafe(Math.min(st.size, maxBytes) + 1);
    let n = 0;
    for (;;) {
      const r = readSync(fd, buf, n, buf.length - n, null);
      if (r === 0) break;
      n += r;
      if (n === buf.length)
        throw new StoreError({ code: 'FILE_TOO_LARGE', message: `${what} ${path} grew past ${maxBytes} bytes while being read`, file: path });
    }
    return buf.subarray(0, n);
  } finally {
    closeSync(fd);
  }
}

/** Appends text; an error names the file (Node's write errors do not), so "disk full" can say which. */
export function appendText(path: string, text: string): void {
  try {
    appendFileSync(path, text);
  } catch (e) {
    if (e && typeof e === 'object' && !('path' in e)) Object.assign(e, { path });
    throw e;
  }
}
