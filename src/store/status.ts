/**
 * A run's status as readers should see it, and as a launcher records it when a training
 * process ended without saying how (killed by a signal, the OOM killer, a power cut).
 */
import { hostname } from 'node:os';
import { readRunRecord, runFolderBusy, writeRunRecord } from './run.js';
import type { ProcessExit, RunRecord, RunStatus } from './types.js';

/** The status to show: 'interrupted' when run.json says running but no live process holds the folder. */
export function shownStatus(dir: string, rec: RunRecord | undefined): RunStatus | 'interrupted' {
  const status = rec?.status ?? 'planned';
  if (status !== 'running') return status;
  return runFolderBusy(dir).busy ? 'running' : 'interrupted';
}

/** Why a process ended, in words: "was killed by SIGKILL (out of memory?)", "exited with code 3". */
export function describeExit(exit: ProcessExit, stopRequested: boolean): string {
  if (exit.signal) {
    const oom = exit.signal === 'SIGKILL' && !stopRequested ? ' (out of memory? nothing asked it to stop; see dmesg)' : '';
    return `the training process was killed by ${exit.signal}${oom}`;
  }
  return `the training process exited with code ${exit.code ?? 'unknown'}`;
}

/**
 * Records the end of a training process that could not record it itself (run.json still says
 * running): killed when it was asked to stop, else failed, with the signal or exit code as
 * the reason. Leaves a folder alone when another live process holds it. Returns the status.
 * `pid` is the process's: a run.json written by an earlier attempt (another pid) says nothing
 * about this one, so a process stopped before it wrote its own ended `killed`, not as the
 * earlier attempt did (a stopped worker's point goes back to the queue, not to `failed`).
 */
export function settleAfterExit(dir: string, exit: ProcessExit, stopRequested: boolean, pid?: number): RunStatus | 'busy' {
  const rec = readRunRecord(dir);
  const earlier = rec !== undefined && pid !== undefined && rec.pid !== pid && rec.status !== 'running';
  if (!rec || earlier) return stopRequested ? 'killed' : 'failed';
  if (rec.status !== 'running') return rec.status;
  if (runFolderBusy(dir).busy) return 'busy';
  const status: RunStatus = stopRequested ? 'killed' : 'failed';
  writeRunRecord(dir, {
    ...rec,
    status,
    reason: `${describeExit(exit, stopRequested)} before it recorded its end`,
    ended: new Date().toISOString(),
    exit,
    host: rec.host ?? hostname(),
  });
  return status;
}
