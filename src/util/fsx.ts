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
  readFileSync,
  readSync,
  renameSync,
  writeSync,
  existsSync,
  rmSync,
} from 'node:fs';
import { dirname, basename, join } from 'node:path';
import { StoreError } from '../errors.js';

let counter = 0;

export function writeFileAtomic(path: string, data: string | Uint8Array): void {
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

export function readJson<T>(path: string): T | undefined {
  try {
    return JSON.parse(readFileSync(path, 'utf8')) as T;
  } catch {
    return undefined;
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
