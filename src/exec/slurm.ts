/**
 * The Slurm side of `exp run --launcher slurm`: the batch script of a job array (one task per
 * unfinished point, task id = the point's index), sbatch, the tasks' states from scontrol (or
 * sacct once Slurm has forgotten the job), and scancel. Only Slurm's own clients are used, with
 * the caller's environment, so SLURM_CONF and the user's cluster settings apply as in a shell.
 *
 * Secrets never go into the script (kept in the sweep folder): sbatch passes the submitting
 * environment (MLFLOW_TRACKING_TOKEN, ...) to the job (--export=ALL, Slurm's default), where
 * slurmctld keeps it with the job's state, readable by the job's owner and Slurm's admins only.
 */
import { execFile } from 'node:child_process';
import { ExpError } from '../errors.js';
import type { ResolvedExperiment } from '../config/types.gen.js';
import type { SlurmSubmission } from '../store/slurm.js';

export type SlurmOptions = ResolvedExperiment['launcher']['slurm'];

const BIN = new URL('../../bin/exp.js', import.meta.url).pathname;

/** One shell word: single-quoted, so nothing in a path or option is expanded. */
export const shellQuote = (s: string): string => `'${s.replace(/'/g, `'\\''`)}'`;

/** "0,2,3,4" -> "0,2-4": the --array list of the points' indices. */
export function arraySpec(ids: readonly number[], throttle?: number): string {
  const sorted = [...new Set(ids)].sort((a, b) => a - b);
  const parts: string[] = [];
  for (let i = 0; i < sorted.length;) {
    let j = i;
    while (j + 1 < sorted.length && sorted[j + 1] === sorted[j]! + 1) j++;
    parts.push(i === j ? `${sorted[i]}` : `${sorted[i]}-${sorted[j]}`);
    i = j + 1;
  }
  return parts.join(',') + (throttle ? `%${throttle}` : '');
}

export interface ScriptSpec {
  jobName: string;
  sweepDir: string;
  logsDir: string;
  submission: number;
  array: string;
  options: SlurmOptions;
}

/** The #SBATCH lines the options ask for, in a stable order. */
function sbatchLines(o: SlurmOptions): string[] {
  const pairs: [string, string | number | null][] = [
    ['partition', o.partition],
    ['account', o.account],
    ['qos', o.qos],
    ['time', o.time],
    ['cpus-per-task', o.cpus_per_task],
    ['mem', o.mem],
    ['gpus-per-task', o.gpus_per_task],
    ['constraint', o.constraint],
  ];
  return [...pairs.filter(([, v]) => v !== null).map(([k, v]) => `#SBATCH --${k}=${v}`), ...o.sbatch.map((l) => `#SBATCH ${l}`)];
}

/**
 * The batch script: a few #SBATCH lines, the user's set-up lines, a check that the sweep folder
 * is there on the node (the runs folder must be shared), then `exp slurm-task`, exec'd so that
 * Slurm's signals reach exp itself. USR1 before the time limit: the point saves its position and
 * the task requeues itself; SIGTERM (scancel, preemption, scontrol requeue): it saves and ends.
 */
export function batchScript(s: ScriptSpec): string {
  return [
    '#!/bin/bash',
    `# Written by exp run --launcher slurm (submission ${s.submission}): array task i trains point i of tasks-${s.submission}.json.`,
    '# No secrets here: they reach the job in the environment sbatch passes on.',
    `#SBATCH --job-name=${s.jobName}`,
    `#SBATCH --array=${s.array}`,
    `#SBATCH --output=${s.logsDir}/%A_%a.out`,
    '#SBATCH --open-mode=append',
    '#SBATCH --requeue',
    `#SBATCH --signal=B:USR1@${s.options.signal_seconds}`,
    ...sbatchLines(s.options),
    ...s.options.setup,
    `SWEEP=${shellQuote(s.sweepDir)}`,
    'if [ ! -d "$SWEEP" ]; then',
    '  echo "exp: the sweep folder $SWEEP is not on $(hostname): the runs folder must be on a file system every node shares (NFS, Lustre, GPFS) [SLURM_TASK_INVALID]" >&2',
    '  exit 2',
    'fi',
    `exec ${shellQuote(process.execPath)} ${shellQuote(BIN)} slurm-task "$SWEEP" --submission ${s.submission}`,
    '',
  ].join('\n');
}

interface ClientResult {
  code: number | null;
  stdout: string;
  stderr: string;
  missing: boolean;
}

/** Runs a Slurm client; never throws (a missing binary is `missing`). */
export function slurmClient(bin: string, args: readonly string[], env: NodeJS.ProcessEnv, cwd?: string): Promise<ClientResult> {
  return new Promise((resolve) => {
    execFile(bin, args, { env, cwd, timeout: 120_000, maxBuffer: 16 << 20, encoding: 'utf8' }, (err, stdout, stderr) => {
      const code = err ? (typeof err.code === 'number' ? err.code : null) : 0;
      resolve({ code, stdout: String(stdout ?? ''), stderr: String(stderr ?? ''), missing: (err as NodeJS.ErrnoException | null)?.code === 'ENOENT' });
    });
  });
}

const unavailable = (bin: string): ExpError =>
  new ExpError({
    code: 'SLURM_UNAVAILABLE',
    message: `${bin} is not on this machine's PATH: --launcher slurm submits from a Slurm login node`,
    fix: 'run exp run on a machine with the Slurm clients (sbatch, squeue, scontrol), or load their module first',
    exit: 'failed',
  });

/** Slurm's own words, trimmed to a few lines. */
const quoted = (r: ClientResult): string => (r.stderr.trim() || r.stdout.trim() || `exit code ${r.code}`).split('\n').slice(0, 6).join('\n').slice(0, 1500);

/** Submits the script; returns the job id. Slurm's refusal is SLURM_SUBMIT with its message. */
export async function sbatch(script: string, cwd: string, env: NodeJS.ProcessEnv): Promise<string> {
  const r = await slurmClient('sbatch', ['--parsable', script], env, cwd);
  if (r.missing) throw unavailable('sbatch');
  const id = /^(\d+)(;\S+)?\s*$/m.exec(r.stdout)?.[1];
  if (r.code !== 0 || !id)
    throw new ExpError({
      code: 'SLURM_SUBMIT',
      message: `sbatch refused the sweep's job array: ${quoted(r)}`,
      file: script,
      fix: 'fix the option Slurm names (--set launcher.slurm.partition=..., launcher.slurm in the experiment file, or in your user config, ~/.config/exp/config.yaml), then run the same command again; the batch script is kept there',
      exit: 'failed',
    });
  return id;
}

/** A task's state as Slurm has it. */
export interface TaskState {
  state: string;
  node?: string;
  reason?: string;
  restarts: number;
}

/** Expands an ArrayTaskId field ("3", "2-5%2", "1,4-6"). */
export function taskIds(field: string): number[] {
  const out: number[] = [];
  for (const part of field.replace(/%\d+$/, '').split(',')) {
    const m = /^(\d+)(?:-(\d+))?$/.exec(part);
    if (!m) continue;
    for (let i = Number(m[1]); i <= Number(m[2] ?? m[1]) && out.length < 100_000; i++) out.push(i);
  }
  return out;
}

const field = (line: string, key: string): string | undefined => new RegExp(`(?:^|\\s)${key}=(\\S*)`).exec(line)?.[1];

/** The states of a job array's tasks from `scontrol show job -o`, by task id; undefined when Slurm has forgotten the job. */
async function fromScontrol(jobId: string, env: NodeJS.ProcessEnv): Promise<Map<number, TaskState> | undefined> {
  const r = await slurmClient('scontrol', ['show', 'job', '-o', jobId], env);
  if (r.missing) throw unavailable('scontrol');
  if (r.code !== 0) return undefined;
  const out = new Map<number, TaskState>();
  for (const line of r.stdout.split('\n')) {
    const ids = field(line, 'ArrayTaskId');
    const state = field(line, 'JobState');
    if (!ids || !state || field(line, 'ArrayJobId') !== jobId) continue;
    const node = field(line, 'NodeList');
    const reason = field(line, 'Reason');
    const s: TaskState = {
      state,
      restarts: Number(field(line, 'Restarts') ?? 0),
      ...(node && node !== '(null)' ? { node } : {}),
      ...(reason && reason !== 'None' ? { reason } : {}),
    };
    for (const id of taskIds(ids)) out.set(id, s);
  }
  return out;
}

/** The same from accounting (sacct), for a job scontrol no longer knows; empty when there is no accounting. */
async function fromSacct(jobId: string, env: NodeJS.ProcessEnv): Promise<Map<number, TaskState>> {
  const r = await slurmClient('sacct', ['-n', '-P', '-X', '-j', jobId, '--format=JobID,State,NodeList,Reason'], env);
  const out = new Map<number, TaskState>();
  if (r.code !== 0) return out;
  for (const line of r.stdout.split('\n')) {
    const [id, state, node, reason] = line.split('|');
    const m = /^\d+_(\d+)$/.exec(id ?? '');
    if (!m || !state) continue;
    out.set(Number(m[1]), {
      state: state.split(' ')[0]!,
      restarts: 0,
      ...(node && node !== 'None assigned' ? { node } : {}),
      ...(reason && reason !== 'None' ? { reason } : {}),
    });
  }
  return out;
}

/** Every task's state of the given submissions, keyed `${job}_${task}`. */
export async function taskStates(subs: readonly SlurmSubmission[], env: NodeJS.ProcessEnv): Promise<Map<string, TaskState>> {
  const out = new Map<string, TaskState>();
  for (const s of subs) {
    const tasks = (await fromScontrol(s.job_id, env)) ?? (await fromSacct(s.job_id, env));
    for (const [id, t] of tasks) out.set(`${s.job_id}_${id}`, t);
  }
  return out;
}

/** A job found by its name: its (array) job id, state, working folder and command where Slurm still has them. */
export interface NamedJob {
  jobId: string;
  state: string;
  workDir?: string;
  command?: string;
}

/**
 * The jobs named `name` that Slurm knows: squeue (every state slurmctld still holds), else
 * accounting (sacct, the last 30 days; empty without accounting). How a proposer that was
 * stopped after sbatch but before recording the job id finds that job again.
 */
export async function jobsNamed(name: string, env: NodeJS.ProcessEnv): Promise<NamedJob[]> {
  const q = await slurmClient('squeue', ['-h', '-t', 'all', '-n', name, '-o', '%F|%T|%Z|%o'], env);
  if (q.missing) throw unavailable('squeue');
  const out: NamedJob[] = [];
  for (const line of q.code === 0 ? q.stdout.split('\n') : []) {
    const [id, state, workDir, ...command] = line.trim().split('|');
    if (id && /^\d+$/.test(id) && state)
      out.push({ jobId: id, state, ...(workDir ? { workDir } : {}), ...(command.length ? { command: command.join('|') } : {}) });
  }
  if (out.length > 0) return out;
  const a = await slurmClient('sacct', ['-n', '-P', '-X', '-S', 'now-30days', '--name', name, '--format=JobID,State,WorkDir'], env);
  for (const line of a.code === 0 ? a.stdout.split('\n') : []) {
    const [id, state, workDir] = line.trim().split('|');
    const m = /^(\d+)(?:_\d+)?$/.exec(id ?? '');
    if (m && state) out.push({ jobId: m[1]!, state: state.split(' ')[0]!, ...(workDir ? { workDir } : {}) });
  }
  return out;
}

/** Whether Slurm may still run the task (queued, running, being requeued). */
export const isActive = (t: TaskState | undefined): boolean =>
  t !== undefined &&
  ['PENDING', 'RUNNING', 'REQUEUED', 'REQUEUE_HOLD', 'REQUEUE_FED', 'CONFIGURING', 'COMPLETING', 'RESIZING', 'SUSPENDED', 'STOPPED', 'SIGNALING'].includes(
    t.state,
  );

/** "pending (JobArrayTaskLimit)", "running on node1", "requeued, pending (BeginTime)", "failed (NonZeroExitCode)". */
export function describeTask(t: TaskState | undefined): string {
  if (!t) return 'gone from Slurm';
  const why = t.reason ? ` (${t.reason})` : '';
  const again = t.restarts > 0 ? `requeued ${t.restarts}x, ` : '';
  switch (t.state) {
    case 'PENDING':
      return `${again}pending${why}`;
    case 'RUNNING':
      return `${again}running${t.node ? ` on ${t.node}` : ''}`;
    case 'COMPLETED':
      return 'completed';
    case 'CANCELLED':
      return 'cancelled';
    case 'REQUEUED':
    case 'REQUEUE_HOLD':
    case 'REQUEUE_FED':
      return 'requeued';
    case 'COMPLETING':
      return `ending${t.node ? ` on ${t.node}` : ''}`;
    default:
      return `${t.state.toLowerCase()}${why}`;
  }
}

/** The submission and task that last covered each run folder name. */
export function latestTasks(subs: readonly SlurmSubmission[]): Map<string, string> {
  const out = new Map<string, string>();
  for (const s of subs) for (const [id, dir] of Object.entries(s.tasks)) out.set(dir, `${s.job_id}_${id}`);
  return out;
}

/** scancel of whole arrays; Slurm sends SIGTERM to every task's processes, the points stop within a batch as `killed`. */
export async function scancel(jobIds: readonly string[], env: NodeJS.ProcessEnv): Promise<void> {
  if (jobIds.length === 0) return;
  const r = await slurmClient('scancel', [...jobIds], env);
  if (r.missing) throw unavailable('scancel');
  if (r.code !== 0)
    throw new ExpError({
      code: 'SLURM_CANCEL',
      message: `scancel ${jobIds.join(' ')} failed: ${quoted(r)}`,
      fix: 'check the jobs with squeue -j; cancelled or not, the points keep their saved positions',
      exit: 'failed',
    });
}
