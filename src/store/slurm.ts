/**
 * A sweep folder's Slurm records (slurm/ in the sweep folder, see layout.ts): which job arrays
 * were submitted for which points, and each submission's task map and batch script. Written by
 * `exp run --launcher slurm` only; read by `exp slurm-task` (on the node), `exp status`,
 * `exp runs` and `exp cancel`. Nothing here is ever removed: a failed submission keeps its script.
 */
import { existsSync, mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import { currentLock, describeOwner, tryLock, type Lock } from './lock.js';
import { ExpError } from '../errors.js';
import { readRecordJson, writeFileAtomic, writeJsonAtomic } from '../util/fsx.js';
import { SLURM_FILES, slurmPath } from './layout.js';
import type { ResolvedExperiment } from '../config/types.gen.js';

/** sweep.early_stop as the resolved experiment has it (store/ is below exec/, which names it EarlyStopRule). */
type EarlyStopRule = NonNullable<NonNullable<ResolvedExperiment['sweep']>['early_stop']>;

/** tasks-N.json: what each array task of submission N trains, and the sweep's early-termination rule (the task is its own scheduler). */
export interface SlurmTaskMap {
  version: 1;
  submission: number;
  sweep_uid: string;
  /** Array task id (the point's index in the sweep) -> its run folder's name in the sweep folder. */
  tasks: Record<string, string>;
  early_stop: EarlyStopRule | null;
  /** checkpoint.monitor, the pruners' fallback metric. */
  monitor: string;
  /** The most epochs a point trains (Hyperband's max resource). */
  max_epochs: number;
}

/** One sbatch of the sweep: its job id and the points it covers. */
export interface SlurmSubmission {
  n: number;
  job_id: string;
  /** The --array spec, e.g. "0,2-3%2". */
  array: string;
  submitted: string;
  tasks: Record<string, string>;
}

/** jobs.json: every submission, oldest first. */
export interface SlurmJobs {
  version: 1;
  submissions: SlurmSubmission[];
}

const SLURM_RECORD_FIX = 'exp writes this file; run exp run --launcher slurm on the experiment file again to submit a fresh array (finished points are kept)';

/** A record exp did not write (a hand edit, a damaged disk): coded, naming the file. */
const invalid = (file: string, what: string): ExpError =>
  new ExpError({ code: 'SLURM_TASK_INVALID', message: `${file} is not a Slurm record exp wrote: ${what}`, file, fix: SLURM_RECORD_FIX, exit: 'failed' });

const isNameMap = (v: unknown): v is Record<string, string> =>
  typeof v === 'object' &&
  v !== null &&
  !Array.isArray(v) &&
  Object.entries(v).every(([k, d]) => /^\d{1,7}$/.test(k) && typeof d === 'string' && /^[A-Za-z0-9_][A-Za-z0-9._=,+-]*$/.test(d));

/** The jobs of a sweep (none when it was never submitted to Slurm). */
export function readSlurmJobs(sweepDir: string): SlurmJobs {
  const file = slurmPath(sweepDir, SLURM_FILES.jobs);
  const v = readRecordJson(file, 'Slurm jobs file', SLURM_RECORD_FIX, 4 << 20) as Partial<SlurmJobs> | undefined;
  if (v === undefined) return { version: 1, submissions: [] };
  const ok =
    Array.isArray(v.submissions) &&
    v.submissions.every(
      (s: Partial<SlurmSubmission>) => Number.isInteger(s.n) && typeof s.job_id === 'string' && /^\d{1,12}$/.test(s.job_id) && isNameMap(s.tasks),
    );
  if (!ok) throw invalid(file, 'its submissions are not {n, job_id, tasks}');
  return v as SlurmJobs;
}

export const hasSlurmJobs = (sweepDir: string): boolean => existsSync(slurmPath(sweepDir, SLURM_FILES.jobs));

/** How long a submitter waits for another one on the same sweep (it needs only sbatch's answer). */
const SUBMIT_WAIT_MS = 5 * 60_000;

/**
 * Takes the sweep's submission lock: from reading what Slurm already has to recording the new
 * job, so that two `exp run --launcher slurm` started at once neither submit the same points
 * nor write the same submission number. The second waits, then finds the points queued.
 */
export async function lockSubmissions(sweepDir: string): Promise<Lock> {
  const base = slurmPath(sweepDir, SLURM_FILES.submitLock);
  mkdirSync(dirname(base), { recursive: true });
  const lock = await tryLock(base, { waitMs: SUBMIT_WAIT_MS, heartbeat: 'timer' });
  if (lock) return lock;
  throw new ExpError({
    code: 'LOCKED',
    message: `another exp run (${describeOwner(currentLock(base)?.owner)}) has been submitting ${sweepDir} to Slurm for over ${SUBMIT_WAIT_MS / 60_000} minutes`,
    fix: 'wait for it to finish (is its sbatch hanging?), or stop it and run this again',
    file: sweepDir,
    exit: 'failed',
  });
}

/** The number the next submission gets: one more than any script already there (a failed sbatch keeps its number). */
export function nextSubmission(sweepDir: string): number {
  let n = readSlurmJobs(sweepDir).submissions.reduce((m, s) => Math.max(m, s.n), 0) + 1;
  while (existsSync(slurmPath(sweepDir, SLURM_FILES.script(n)))) n++;
  return n;
}

/** Submission N's batch script (what sbatch was given, and what Slurm shows as the job's command). */
export const submissionScript = (sweepDir: string, n: number): string => slurmPath(sweepDir, SLURM_FILES.script(n));

/** Writes submission N's task map and batch script; returns the script's path. */
export function writeSubmission(sweepDir: string, map: SlurmTaskMap, script: string): string {
  writeJsonAtomic(slurmPath(sweepDir, SLURM_FILES.tasks(map.submission)), map);
  const path = submissionScript(sweepDir, map.submission);
  writeFileAtomic(path, script);
  return path;
}

/** Records a submission Slurm accepted. */
export function recordSubmission(sweepDir: string, s: SlurmSubmission): void {
  const jobs = readSlurmJobs(sweepDir);
  writeJsonAtomic(slurmPath(sweepDir, SLURM_FILES.jobs), { ...jobs, submissions: [...jobs.submissions, s] });
}

/**
 * The task maps of submissions written but never recorded: sbatch refused them, or exp was
 * stopped between writing the script and recording the job Slurm accepted (an adaptive study's
 * proposer looks such a job up by name so that a proposal never gets a second job).
 */
export function unrecordedSubmissions(sweepDir: string): SlurmTaskMap[] {
  const recorded = new Set(readSlurmJobs(sweepDir).submissions.map((s) => s.n));
  const out: SlurmTaskMap[] = [];
  for (let n = 1; n < nextSubmission(sweepDir); n++)
    if (!recorded.has(n) && existsSync(slurmPath(sweepDir, SLURM_FILES.tasks(n)))) out.push(readTaskMap(sweepDir, n));
  return out;
}

/** Submission N's task map, as an array task reads it. */
export function readTaskMap(sweepDir: string, n: number): SlurmTaskMap {
  const file = slurmPath(sweepDir, SLURM_FILES.tasks(n));
  const v = readRecordJson(file, 'Slurm task map', SLURM_RECORD_FIX, 4 << 20) as Partial<SlurmTaskMap> | undefined;
  if (v === undefined) throw invalid(file, 'it does not exist (is the runs folder on a file system this node shares?)');
  if (v.version !== 1 || v.submission !== n || !isNameMap(v.tasks)) throw invalid(file, 'its tasks are not a map of task ids to run folder names');
  if (typeof v.monitor !== 'string' || !Number.isInteger(v.max_epochs) || typeof v.sweep_uid !== 'string')
    throw invalid(file, 'monitor, max_epochs or sweep_uid is missing');
  const rule = v.early_stop as { rule?: unknown } | null | undefined;
  if (rule !== null && (typeof rule !== 'object' || !['median', 'asha', 'hyperband'].includes(String(rule?.rule))))
    throw invalid(file, 'early_stop is not a rule exp knows');
  return v as SlurmTaskMap;
}

/** The folder the tasks' output goes to (--output), made before sbatch: Slurm does not make it. */
export const slurmLogsDir = (sweepDir: string): string => slurmPath(sweepDir, SLURM_FILES.logs);
