/**
 * Runs a sweep's folders on this machine, one after another, each in its own child process
 * (`exp train <folder>`): a crash or leak in one run cannot take the sweep down, memory is
 * returned between runs, and the child is exactly what a queue worker or a resume runs.
 * Finished folders are skipped, so re-running a sweep resumes it.
 */
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { readRunRecord, type RunStatus } from '../train/run.js';
import { lockHeldByLiveProcess } from './lock.js';
import { writeJsonAtomic } from '../util/fsx.js';

export interface FolderResult { dir: string; status: RunStatus | 'skipped'; code: number | null; seconds: number }

export interface LocalOptions {
  /** Also re-train folders whose status is completed. */
  force?: boolean;
  /** Only folders whose last status is failed or killed (and never-run ones are skipped). */
  onlyFailed?: boolean;
  env?: NodeJS.ProcessEnv;
  onStart?: (dir: string, i: number, n: number) => void;
}

const BIN = new URL('../../bin/exp.js', import.meta.url).pathname;

export async function runFolders(dirs: readonly string[], opts: LocalOptions = {}): Promise<FolderResult[]> {
  const results: FolderResult[] = [];
  let stopping = false;
  let child: ReturnType<typeof spawn> | undefined;
  const onSignal = (sig: NodeJS.Signals): void => { stopping = true; child?.kill(sig); };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  try {
    for (const [i, dir] of dirs.entries()) {
      const status = readRunRecord(dir)?.status;
      const skip = stopping || (status === 'completed' && !opts.force) || (opts.onlyFailed && status !== 'failed' && status !== 'killed' && !(status === 'running' && !lockHeldByLiveProcess(dir)));
      if (skip) { results.push({ dir, status: 'skipped', code: null, seconds: 0 }); continue; }
      opts.onStart?.(dir, i, dirs.length);
      const t0 = performance.now();
      const code = await new Promise<number | null>((resolve) => {
        child = spawn(process.execPath, [BIN, 'train', dir, ...(opts.force ? ['--force'] : [])], { stdio: 'inherit', env: opts.env ?? process.env });
        child.on('exit', (c, sig) => resolve(c ?? (sig ? 130 : null)));
        child.on('error', () => resolve(null));
      });
      child = undefined;
      results.push({ dir, status: settle(dir, code), code, seconds: (performance.now() - t0) / 1000 });
    }
  } finally {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
  }
  return results;
}

/**
 * The status of a folder after its child exited. A child killed by a signal or the OOM
 * killer cannot write its own end, so run.json still says running: record it from the exit
 * code (130 = interrupted, else failed), unless another live process holds the folder.
 */
function settle(dir: string, code: number | null): FolderResult['status'] {
  const rec = readRunRecord(dir);
  const status = rec?.status;
  if (code === 0 && status) return status;
  if (status === 'failed' || status === 'killed') return status;
  if (lockHeldByLiveProcess(dir)) return 'failed';
  const settled = code === 130 ? 'killed' : 'failed';
  if (rec) writeJsonAtomic(join(dir, 'run.json'), { ...rec, status: settled, reason: `the training process exited with ${code === null ? 'a signal' : `code ${code}`} before recording its end`, ended: new Date().toISOString() });
  return settled;
}

export const runDirsOf = (sweepDir: string, points: readonly { dir: string }[]): string[] => points.map((p) => join(sweepDir, p.dir));
