/**
 * exp on a Slurm cluster: `exp run --launcher slurm` (submit the unfinished points as one job
 * array, return with its id, or follow it with --wait), `exp slurm-task` (what each array task
 * runs), `exp cancel SWEEP`, and the Slurm state column of `exp status` and `exp runs`.
 */
import { mkdirSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { defineCommand } from './command.js';
import { EXIT, cwdOf, type Io } from './io.js';
import { displayPath, table } from './report.js';
import { userConfigLine } from './user-config.js';
import { UsageError } from '../errors.js';
import { skipReason } from '../exec/local.js';
import { arraySpec, batchScript, describeTask, isActive, latestTasks, sbatch, scancel, taskStates, type TaskState } from '../exec/slurm.js';
import { runSlurmTask } from '../exec/slurm-task.js';
import {
  hasSlurmJobs,
  lockSubmissions,
  nextSubmission,
  readSlurmJobs,
  recordSubmission,
  slurmLogsDir,
  writeSubmission,
  type SlurmSubmission,
} from '../store/slurm.js';
import { readRunRecord } from '../store/run.js';
import { shownStatus } from '../store/status.js';
import { readSweepIndex } from '../store/sweep.js';
import type { Plan } from '../sweep/plan.js';
import type { SweepIndex } from '../store/types.js';

export interface SlurmRunFlags {
  workers?: number | undefined;
  retryFailed: boolean;
  wait: boolean;
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** The run folder names whose latest task Slurm may still run. */
async function activeInSlurm(sweepDir: string, env: NodeJS.ProcessEnv): Promise<{ active: Set<string>; states: Map<string, TaskState> }> {
  const subs = readSlurmJobs(sweepDir).submissions;
  const states = await taskStates(subs, env);
  const active = new Set([...latestTasks(subs)].filter(([, t]) => isActive(states.get(t))).map(([d]) => d));
  return { active, states };
}

/** `exp run FILE --launcher slurm`: submits one array of the points not finished and not already queued. */
export async function runOnSlurm(plan: Plan, sweepDir: string, index: SweepIndex, flags: SlurmRunFlags, io: Io): Promise<number> {
  const lock = await lockSubmissions(sweepDir);
  let submitted: boolean;
  try {
    submitted = await submitUnfinished(plan, sweepDir, index, flags, io);
  } finally {
    lock.release();
  }
  if (submitted && !flags.wait) {
    const shown = displayPath(sweepDir, cwdOf(io));
    io.stdout.write(`Follow it with: exp status ${shown}\nCancel it with: exp cancel ${shown}\n`);
  }
  return flags.wait ? followSlurm(sweepDir, io) : EXIT.ok;
}

/** Submits one array of the points neither ended nor queued; false when there were none. */
async function submitUnfinished(plan: Plan, sweepDir: string, index: SweepIndex, flags: SlurmRunFlags, io: Io): Promise<boolean> {
  const { active } = await activeInSlurm(sweepDir, io.env);
  const todo = index.points.filter((p) => !active.has(p.dir) && !skipReason(join(sweepDir, p.dir), { retryFailed: flags.retryFailed }));
  const left = index.points.length - todo.length;
  if (todo.length === 0) {
    io.stdout.write(`Nothing to submit: every point has ended or is queued in Slurm (${active.size} queued or running)\n`);
    return false;
  }
  const n = nextSubmission(sweepDir);
  const array = arraySpec(
    todo.map((p) => p.index),
    flags.workers,
  );
  const tasks = Object.fromEntries(todo.map((p) => [String(p.index), p.dir]));
  const rule = plan.experiment.sweep?.early_stop ?? null;
  const maxEpochs = Math.max(...plan.points.map((p) => p.config.training.epochs));
  mkdirSync(slurmLogsDir(sweepDir), { recursive: true });
  const script = writeSubmission(
    sweepDir,
    { version: 1, submission: n, sweep_uid: index.uid, tasks, early_stop: rule, monitor: plan.experiment.checkpoint.monitor, max_epochs: maxEpochs },
    batchScript({
      jobName: `exp-${index.experiment}-${index.sweep}`.slice(0, 120),
      sweepDir,
      logsDir: slurmLogsDir(sweepDir),
      submission: n,
      array,
      options: plan.experiment.launcher.slurm,
    }),
  );
  const jobId = await sbatch(script, sweepDir, io.env);
  recordSubmission(sweepDir, { n, job_id: jobId, array, submitted: new Date().toISOString(), tasks });
  const cwd = cwdOf(io);
  io.stdout.write(
    `Submitted job array ${jobId} (--array=${array}): ${todo.length} point${todo.length === 1 ? '' : 's'}${left ? `; ${left} ended or queued before, not submitted` : ''}\n`,
  );
  io.stdout.write(`  script ${displayPath(script, cwd)}, logs ${displayPath(slurmLogsDir(sweepDir), cwd)}/\n`);
  io.stdout.write(userConfigLine(plan, io, '  '));
  return true;
}

/** Each point's line: exp's status and Slurm's state. */
async function pointLines(sweepDir: string, env: NodeJS.ProcessEnv): Promise<{ rows: string[][]; active: number }> {
  const index = (readSweepIndex(sweepDir)?.points ?? []).map((p) => p.dir);
  const subs = readSlurmJobs(sweepDir).submissions;
  const states = await taskStates(subs, env);
  const latest = latestTasks(subs);
  let active = 0;
  const rows = index.map((d) => {
    const task = latest.get(d);
    const t = task ? states.get(task) : undefined;
    if (isActive(t)) active++;
    const dir = join(sweepDir, d);
    return [d, shownStatus(dir, readRunRecord(dir)), task ?? '', task ? describeTask(t) : 'not submitted'];
  });
  return { rows, active };
}

/** --wait: polls Slurm until none of the sweep's tasks is queued or running, printing each change; then the table. */
export async function followSlurm(sweepDir: string, io: Io, pollMs = 2000): Promise<number> {
  const seen = new Map<string, string>();
  for (;;) {
    const { rows, active } = await pointLines(sweepDir, io.env);
    for (const [d, status, task, slurm] of rows) {
      const line = `${status}, slurm ${slurm}`;
      if (seen.get(d!) !== line) io.stdout.write(`${d} (${task}): ${line}\n`);
      seen.set(d!, line);
    }
    if (active === 0) {
      io.stdout.write(`\n${table(['run', 'status', 'slurm task', 'slurm'], rows)}`);
      const statuses = rows.map((r) => r[1]);
      return statuses.some((s) => s === 'failed') ? EXIT.failed : statuses.every((s) => s === 'completed' || s === 'pruned') ? EXIT.ok : EXIT.interrupted;
    }
    await sleep(pollMs);
  }
}

/** Slurm's state per run folder, for `exp status`/`exp runs`; undefined when no folder's sweep was submitted to Slurm. */
export async function slurmColumn(dirs: readonly string[], env: NodeJS.ProcessEnv): Promise<Map<string, string> | undefined> {
  const sweeps = [...new Set(dirs.map((d) => dirname(d)))].filter((s) => hasSlurmJobs(s));
  if (sweeps.length === 0) return undefined;
  const out = new Map<string, string>();
  for (const s of sweeps) {
    let subs: SlurmSubmission[];
    let states: Map<string, TaskState>;
    try {
      subs = readSlurmJobs(s).submissions;
      states = await taskStates(subs, env);
    } catch (e) {
      for (const d of dirs.filter((x) => dirname(x) === s)) out.set(d, `unknown: ${(e as Error).message.split('\n')[0]!.slice(0, 80)}`);
      continue;
    }
    for (const [name, task] of latestTasks(subs)) out.set(join(s, name), `${task} ${describeTask(states.get(task))}`);
  }
  return out;
}

export const slurmTaskCommand = defineCommand({
  name: 'slurm-task',
  summary: 'Train the point of one Slurm array task (what the batch script of `exp run --launcher slurm` runs).',
  usage: 'slurm-task SWEEP_DIR --submission N',
  details: [
    'Reads SLURM_ARRAY_TASK_ID, finds its run folder in SWEEP_DIR/slurm/tasks-N.json and trains it as exp run would.',
    'SIGTERM (scancel, scontrol requeue, preemption) stops it within a batch with its position saved; SIGUSR1 (the warning',
    'before the time limit) does the same and requeues the task, so the next allocation resumes mid-epoch.',
  ].join('\n'),
  positionals: { name: 'SWEEP_DIR', min: 1, max: 1 },
  flags: { submission: { type: 'int', arg: 'N', min: 1, description: 'The submission whose task map to read (written by exp run).' } },
  async run(dirs, flags, io) {
    if (flags.submission === undefined)
      throw new UsageError({ code: 'USAGE', message: 'exp slurm-task needs --submission N', fix: 'it is run by the batch script exp run writes' });
    const sweepDir = resolve(cwdOf(io), dirs[0]!);
    return runSlurmTask({ sweepDir, submission: flags.submission, env: io.env, say: (l) => io.stdout.write(`${l}\n`) });
  },
});

export const cancelCommand = defineCommand({
  name: 'cancel',
  summary: "Cancel a sweep's Slurm job arrays: running points stop within a batch as killed (resumable), queued ones never start.",
  usage: 'cancel SWEEP_DIR [--no-wait]',
  details: [
    'Run exp run --launcher slurm on the same file again to submit the points that have not finished; they resume where they stopped.',
    "A sweep.tpe study's proposer (the exp run following it) sees the cancel, makes no more proposals and ends with exit status 130.",
  ].join('\n'),
  positionals: { name: 'SWEEP_DIR', min: 1, max: 1 },
  flags: { 'no-wait': { type: 'boolean', description: 'Return once scancel has been sent, without waiting for the tasks to end.' } },
  async run(dirs, flags, io) {
    const sweepDir = resolve(cwdOf(io), dirs[0]!);
    if (!hasSlurmJobs(sweepDir))
      throw new UsageError({
        code: 'PATH_NOT_FOUND',
        message: `${dirs[0]} is not a sweep folder submitted to Slurm (it has no slurm/jobs.json)`,
        fix: 'give the sweep folder exp run --launcher slurm printed',
      });
    const subs = readSlurmJobs(sweepDir).submissions;
    const states = await taskStates(subs, io.env);
    const jobs = subs.filter((s) => Object.keys(s.tasks).some((id) => isActive(states.get(`${s.job_id}_${id}`)))).map((s) => s.job_id);
    if (jobs.length === 0) {
      io.stdout.write('Nothing to cancel: no task of this sweep is queued or running\n');
      return EXIT.ok;
    }
    await scancel(jobs, io.env);
    io.stdout.write(`Cancelled job${jobs.length === 1 ? '' : 's'} ${jobs.join(', ')}\n`);
    if (flags['no-wait']) return EXIT.ok;
    await followSlurm(sweepDir, io);
    io.stdout.write(`Resume with: exp run FILE --launcher slurm (the unfinished points continue where they stopped)\n`);
    return EXIT.ok;
  },
});
