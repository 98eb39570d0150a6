/** What the commands that use a trained model share: naming the run (or ensemble), the backend and threshold flags, progress. */
import { closeSync, existsSync, openSync, readSync } from 'node:fs';
import { resolve } from 'node:path';
import { cwdOf, type Io } from './io.js';
import { runsDirOf } from './flags.js';
import { UsageError } from '../errors.js';
import { findRunFolder } from '../store/find.js';
import { isEnsembleFolder } from '../store/ensemble.js';
import { checkWritableFile } from '../util/fsx.js';

/** The first line of a regular file (at most 64 KiB of it), without its line ending. */
export function firstLine(path: string): string {
  const fd = openSync(path, 'r');
  try {
    const buf = Buffer.alloc(64 * 1024);
    const n = readSync(fd, buf, 0, buf.length, 0);
    return buf.subarray(0, n).toString('utf8').split('\n')[0]!.replace(/\r$/, '');
  } finally {
    closeSync(fd);
  }
}

/**
 * Whether an output named on the command line may be written at `path`: never over a device, a
 * FIFO, a socket or a folder (NOT_A_REGULAR_FILE); over an existing file only when `ours` says
 * exp wrote it (or with --force), so a user's own file is never replaced by accident.
 */
export async function checkOutputTarget(path: string, flag: string, ours: (path: string) => boolean | Promise<boolean>, force: boolean): Promise<void> {
  checkWritableFile(path, flag);
  if (!existsSync(path) || force) return;
  let mine = false;
  try {
    mine = await ours(path);
  } catch {
    mine = false;
  }
  if (!mine)
    throw new UsageError({
      code: 'BAD_OPTION_VALUE',
      message: `${flag} ${path} exists and is not a file exp wrote; exp will not replace it`,
      fix: 'give the path of a new file, or pass --force to replace it',
    });
}

/** The folder RUN names: an ensemble folder (made by exp ensemble), a run folder, or a run key. */
export function modelFolder(spec: string, io: Io, runsDir?: string): { dir: string; ensemble: boolean } {
  const direct = resolve(cwdOf(io), spec);
  if (isEnsembleFolder(direct)) return { dir: direct, ensemble: true };
  return { dir: findRunFolder(spec, cwdOf(io), runsDirOf(runsDir, io)), ensemble: false };
}

/** --thresholds: 'tuned' keeps the model's own; a number in (0, 1) is used for every tag. */
export function thresholdsFor(flag: string, own: readonly number[]): { thresholds: number[]; from: string } {
  if (flag === 'tuned') return { thresholds: [...own], from: "the model's own" };
  const p = Number(flag);
  if (!(p > 0 && p < 1))
    throw new UsageError({
      code: 'BAD_OPTION_VALUE',
      message: `--thresholds must be 'tuned' or a probability between 0 and 1, not '${flag}'`,
      fix: 'e.g. --thresholds 0.5',
    });
  return { thresholds: own.map(() => p), from: `${p} for every tag` };
}

/** A progress line on stderr: rewritten in place on a terminal, every 10% otherwise. */
export function progressLine(io: Io, what: string): (done: number, total: number) => void {
  let shown = -1;
  return (done, total) => {
    const pct = total === 0 ? 100 : Math.floor((100 * done) / total);
    if (io.stderr.isTTY) io.stderr.write(`\r${what}: ${done}/${total} (${pct}%)${done >= total ? '\n' : ''}`);
    else if (Math.floor(pct / 10) > shown) {
      shown = Math.floor(pct / 10);
      io.stderr.write(`${what}: ${done}/${total} (${pct}%)\n`);
    }
  };
}
