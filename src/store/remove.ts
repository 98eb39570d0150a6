/**
 * Removing what the store holds, for exp rm and exp gc: whole run folders (and their entries in
 * the sweep's index.json), or the files of a finished run that nothing needs any more. A folder
 * that a live process trains is never touched.
 */
import { existsSync, lstatSync, readdirSync, rmSync } from 'node:fs';
import { basename, join } from 'node:path';
import { StoreError } from '../errors.js';
import { checkpointDir, checkpointStatePath, RUN_FILES, sweepDirOf } from './layout.js';
import { readRunRecord, runFolderBusy } from './run.js';
import { readSweepIndex, writeSweepIndex } from './sweep-index.js';
import { isFinished } from './types.js';

/** Bytes under `path` (a file or a folder); symbolic links count as themselves, never followed. */
export function sizeOf(path: string): number {
  let st;
  try {
    st = lstatSync(path);
  } catch {
    return 0;
  }
  if (!st.isDirectory()) return st.size;
  return readdirSync(path).reduce((a, n) => a + sizeOf(join(path, n)), 0);
}

function refuseBusy(dir: string): void {
  const busy = runFolderBusy(dir);
  if (busy.busy)
    throw new StoreError({
      code: 'LOCKED',
      message: `${dir} is being trained by ${busy.owner}`,
      fix: 'wait for it to end (or stop it), then run this again',
      file: dir,
      exit: 'failed',
    });
}

/**
 * Removes a run folder and its entry in the sweep's index.json; returns the bytes freed. The
 * caller holds the folder's lock (`held`), or the folder must not be busy.
 */
export function removeRunFolder(dir: string, opts: { held?: boolean } = {}): number {
  if (!opts.held) refuseBusy(dir);
  const bytes = sizeOf(dir);
  const sweepDir = sweepDirOf(dir);
  const index = readSweepIndex(sweepDir);
  if (index) {
    const points = index.points.filter((p) => p.dir !== basename(dir));
    if (points.length !== index.points.length) writeSweepIndex(sweepDir, { ...index, points });
  }
  rmSync(dir, { recursive: true, force: true });
  return bytes;
}

/** What exp gc may delete in a run folder that has ended: its last checkpoint (best stays: evaluate, predict and export use it), staged uploads, leftovers of interrupted writes. */
export function collectable(dir: string): string[] {
  if (!isFinished(readRunRecord(dir)?.status)) return [];
  if (runFolderBusy(dir).busy) return [];
  const out: string[] = [];
  const ckpts = join(dir, RUN_FILES.checkpoints);
  if (existsSync(checkpointStatePath(checkpointDir(dir, 'best'))) && existsSync(checkpointDir(dir, 'last'))) out.push(checkpointDir(dir, 'last'));
  if (existsSync(ckpts)) for (const n of readdirSync(ckpts)) if (n.startsWith('upload-') || /\.(tmp|old)-\d+-\d+$/.test(n)) out.push(join(ckpts, n));
  return out;
}
