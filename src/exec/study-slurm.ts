/**
 * An adaptive study (sweep.tpe) on Slurm: the `exp run --launcher slurm` process is the proposer.
 * It holds the study's lock, keeps up to --workers proposals in flight, each its own one-task
 * job array (task id = the point's index, so `exp slurm-task` and the Slurm columns of exp status
 * and exp runs work as for a whole array), and proposes the next point from the results the
 * shared run folders hold once Slurm says a job has ended. A job that ended without its point
 * finishing is a failed trial.
 *
 * Why the submitting process and not a coordinator job: TPE needs one process that sees every
 * result; a coordinator job would hold an allocation for the whole study and could be killed or
 * requeued like any job. Here nothing is lost when the proposer dies (SIGKILL, a closed login
 * session): the journal (study.jsonl) has every proposal, written with its run folder BEFORE
 * sbatch, and jobs.json every job Slurm accepted. Running the same command again follows the
 * jobs still queued or running, adopts a job sbatch accepted but jobs.json missed (found by its
 * name, `exp-<experiment>-<sweep>-p<index>`, and checked to be this sweep's), submits a proposal
 * that never got a job, and never trains a finished point again.
 */
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import type { Plan } from '../sweep/plan.js';
import type { ProposalEntry } from '../store/study.js';
import { readRunRecord, runFolderBusy } from '../store/run.js';
import { shownStatus } from '../store/status.js';
import { readSweepIndex } from '../store/sweep.js';
import { nextSubmission, readSlurmJobs, recordSubmission, slurmLogsDir, submissionScript, unrecordedSubmissions, writeSubmission } from '../store/slurm.js';
import { batchScript, describeTask, isActive, jobsNamed, latestTasks, sbatch, scancel, taskStates, type TaskState } from './slurm.js';
import { Stopper } from './launch.js';
import type { Study } from './study-driver.js';
import type { SweepIndex } from '../store/types.js';

export interface StudySlurmOptions {
  /** The most proposals in Slurm at once. */
  workers: number;
  retryFailed: boolean;
  env: NodeJS.ProcessEnv;
  say: (line: string) => void;
  /** sweep.budget's check before each new proposal (the points this run submitted): a reason stops proposing. */
  mayStart?: (started: readonly string[]) => string | undefined;
  pollMs?: number;
}

export interface StudySlurmEnd {
  /** done: no proposal is in Slurm and none is left to make; cancelled: a job of the study was cancelled (exp cancel); interrupted: this process was stopped (its jobs go on). */
  end: 'done' | 'cancelled' | 'interrupted';
  /** Why the budget stopped the proposing, if it did. */
  spent?: string;
  /** Run folders whose job ended without the point finishing (failed trials). */
  failed: string[];
  /** One row per proposal: run, status, Slurm task, Slurm state. */
  rows: string[][];
}

/** A proposal's job name: what finds a job whose id exp never recorded. */
export const proposalJobName = (experiment: string, sweep: string, index: number): string => `exp-${experiment}-${sweep}`.slice(0, 100) + `-p${index}`;

/** scontrol and sacct may both miss a job for a while (slurmctld restarting): it has ended only once gone this long, or its folder says it ended. */
const GONE_MS = 60_000;

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/**
 * Where to stop the proposer in a test (EXP_TEST=1 only): EXP_TEST_STUDY_SLURM_DIE=before-sbatch:I
 * or after-sbatch:I SIGKILLs this process around the sbatch of proposal I, as a crash would.
 */
function testDie(env: NodeJS.ProcessEnv, at: 'before-sbatch' | 'after-sbatch', index: number): void {
  if (env.EXP_TEST === '1' && env.EXP_TEST_STUDY_SLURM_DIE === `${at}:${index}`) process.kill(process.pid, 'SIGKILL');
}

type Fate = 'done' | 'flight' | 'needs';

/** One proposer's run: what it has seen of the study's jobs. */
class SlurmStudy {
  /** Tasks this run submitted or saw queued/running: only their end (or cancel) is news to this run. */
  private readonly seen = new Set<string>();
  private readonly gone = new Map<string, number>();
  private readonly shown = new Map<string, string>();
  readonly failed = new Set<string>();
  readonly started: string[] = [];
  cancelled = false;
  private latest = new Map<string, string>();
  private states = new Map<string, TaskState>();
  private queried = new Set<string | undefined>();
  private readonly index: SweepIndex;

  constructor(
    private readonly plan: Plan,
    readonly study: Study,
    private readonly o: StudySlurmOptions,
  ) {
    this.index = readSweepIndex(study.dir)!;
    // A job that ended without its point finishing is a failed trial for TPE; every other result comes from the run folder.
    study.results = (p) => (this.failed.has(p.dir) ? { status: 'failed' } : undefined);
  }

  live(): ProposalEntry[] {
    return this.study.proposals().filter((p) => p.duplicate_of === undefined);
  }

  private status(p: ProposalEntry): string | undefined {
    return readRunRecord(join(this.study.dir, p.dir))?.status;
  }

  /** Slurm's states of the latest job of each proposal not finished (read before the folders, so a folder is never older than its job's state). */
  async snapshot(): Promise<void> {
    const subs = readSlurmJobs(this.study.dir).submissions;
    this.latest = latestTasks(subs);
    const open = new Set(
      this.live()
        .filter((p) => !['completed', 'pruned'].includes(this.status(p) ?? ''))
        .map((p) => this.latest.get(p.dir)?.split('_')[0]),
    );
    this.queried = new Set(open);
    this.states = await taskStates(
      subs.filter((s) => open.has(s.job_id)),
      this.o.env,
    );
  }

  /** Slurm's word for a task; a finished point's job is not asked about again ("ended"). */
  private slurmOf(task: string): string {
    return this.queried.has(task.split('_')[0]) ? describeTask(this.states.get(task)) : 'ended';
  }

  /** Whether a proposal is finished (for this run), has a job in Slurm, or needs one. */
  fate(p: ProposalEntry, now = Date.now()): Fate {
    const status = this.status(p);
    if (status === 'completed' || status === 'pruned') return 'done';
    const task = this.latest.get(p.dir);
    const t = task ? this.states.get(task) : undefined;
    if (task && isActive(t)) {
      this.seen.add(task);
      this.gone.delete(task);
      return 'flight';
    }
    // A job Slurm has ended while its trainer still finishes its batch (cancelled): the folder's end is what counts.
    if (runFolderBusy(join(this.study.dir, p.dir)).busy) return 'flight';
    // No job yet, or one an earlier exp run followed that ended unfinished (cancelled, killed): it needs a job.
    if (!task || !this.seen.has(task)) return status === 'failed' && !this.o.retryFailed ? 'done' : 'needs';
    if (!t && status !== 'failed' && status !== 'killed') {
      if (!this.gone.has(task)) this.gone.set(task, now);
      if (now - this.gone.get(task)! < GONE_MS) return 'flight';
    }
    if (t?.state === 'CANCELLED') this.cancelled = true;
    else if (status !== 'failed') this.failed.add(p.dir);
    return 'done';
  }

  /** Says each change of a proposal's status or Slurm state. */
  report(): void {
    for (const p of this.live()) {
      const task = this.latest.get(p.dir);
      if (!task) continue;
      const line = `${shownStatus(join(this.study.dir, p.dir), readRunRecord(join(this.study.dir, p.dir)))}, slurm ${this.slurmOf(task)}`;
      if (this.shown.get(p.dir) !== line) this.o.say(`${p.dir} (${task}): ${line}`);
      this.shown.set(p.dir, line);
    }
  }

  /** One row per proposal for the end table, with every job's state read once more. */
  async rows(): Promise<string[][]> {
    const subs = readSlurmJobs(this.study.dir).submissions;
    this.latest = latestTasks(subs);
    const latestJobs = new Set([...this.latest.values()].map((t) => t.split('_')[0]));
    this.states = await taskStates(
      subs.filter((x) => latestJobs.has(x.job_id)),
      this.o.env,
    );
    return this.live().map((p) => {
      const dir = join(this.study.dir, p.dir);
      const task = this.latest.get(p.dir);
      return [p.dir, shownStatus(dir, readRunRecord(dir)), task ?? '', task ? describeTask(this.states.get(task)) : 'not submitted'];
    });
  }

  private jobName(p: ProposalEntry): string {
    return proposalJobName(this.index.experiment, this.index.sweep, p.index);
  }

  /**
   * A job sbatch accepted for the proposal but jobs.json never recorded (exp stopped in between):
   * found by name among the jobs of this sweep's folder, recorded now; undefined when there is none.
   */
  async adopt(p: ProposalEntry): Promise<string | undefined> {
    const maps = unrecordedSubmissions(this.study.dir).filter((m) => m.tasks[String(p.index)] === p.dir);
    if (maps.length === 0) return undefined;
    const recorded = new Set(readSlurmJobs(this.study.dir).submissions.map((s) => s.job_id));
    const scripts = new Map(maps.map((m) => [submissionScript(this.study.dir, m.submission), m.submission]));
    const jobs = (await jobsNamed(this.jobName(p), this.o.env))
      .filter((j) => !recorded.has(j.jobId) && (j.command ? scripts.has(j.command) : j.workDir === this.study.dir))
      .sort((a, b) => Number(b.jobId) - Number(a.jobId));
    const job = jobs[0];
    if (!job) return undefined;
    // Without the command (accounting only), the latest unrecorded script: a later sbatch always has a later script.
    const n = (job.command ? scripts.get(job.command) : undefined) ?? maps.at(-1)!.submission;
    recordSubmission(this.study.dir, {
      n,
      job_id: job.jobId,
      array: String(p.index),
      submitted: new Date().toISOString(),
      tasks: { [String(p.index)]: p.dir },
    });
    // Queued or running when found: its cancel from now on is news to this run, as for a job it submitted.
    if (isActive({ state: job.state, restarts: 0 })) this.seen.add(`${job.jobId}_${p.index}`);
    this.o.say(`${p.dir}: adopted job ${job.jobId} (${job.state.toLowerCase()}), submitted before exp was stopped and found by its name`);
    return job.jobId;
  }

  /** Submits the proposal as its own one-task array: task map and script first, then sbatch, then the record. */
  async submit(p: ProposalEntry): Promise<void> {
    const dir = this.study.dir;
    const n = nextSubmission(dir);
    const tasks = { [String(p.index)]: p.dir };
    mkdirSync(slurmLogsDir(dir), { recursive: true });
    const script = writeSubmission(
      dir,
      {
        version: 1,
        submission: n,
        sweep_uid: this.index.uid,
        tasks,
        early_stop: this.plan.experiment.sweep?.early_stop ?? null,
        monitor: this.plan.experiment.checkpoint.monitor,
        max_epochs: Math.max(...this.plan.points.map((x) => x.config.training.epochs)),
      },
      batchScript({
        jobName: this.jobName(p),
        sweepDir: dir,
        logsDir: slurmLogsDir(dir),
        submission: n,
        array: String(p.index),
        options: this.plan.experiment.launcher.slurm,
      }),
    );
    testDie(this.o.env, 'before-sbatch', p.index);
    const jobId = await sbatch(script, dir, this.o.env);
    testDie(this.o.env, 'after-sbatch', p.index);
    recordSubmission(dir, { n, job_id: jobId, array: String(p.index), submitted: new Date().toISOString(), tasks });
    this.seen.add(`${jobId}_${p.index}`);
    this.started.push(join(dir, p.dir));
    this.o.say(`${p.dir}: submitted job ${jobId}`);
  }

  /** scancel of the study's jobs still in Slurm (those a concurrent exp cancel did not see yet). */
  async cancelRest(): Promise<void> {
    const jobs = [...this.latest.values()].filter((t) => isActive(this.states.get(t))).map((t) => t.split('_')[0]!);
    await scancel([...new Set(jobs)], this.o.env);
  }
}

/** Makes new proposals and submits each while a slot is free; false once no more will be made (count, budget, lost lock). */
async function propose(s: SlurmStudy, o: StudySlurmOptions, free: number, state: { spent?: string }): Promise<{ more: boolean; submitted: number }> {
  let submitted = 0;
  while (submitted < free) {
    const made = s.study.proposals().length;
    // A study that has made its count has nothing left to start: its budget is not what ends it.
    const spent = made < s.study.settings.count ? o.mayStart?.(s.started) : undefined;
    if (spent) {
      state.spent = spent;
      o.say(`${spent}: no more proposals; the points in Slurm finish`);
      return { more: false, submitted };
    }
    const dir = await s.study.next();
    if (!dir) return { more: false, submitted };
    const p = s.live().find((x) => join(s.study.dir, x.dir) === dir)!;
    o.say(`proposed ${p.dir} (${p.sampler}, ${p.known.length} earlier point${p.known.length === 1 ? '' : 's'} known)`);
    await s.submit(p);
    submitted++;
  }
  return { more: true, submitted };
}

/** One round: Slurm's states, each proposal's fate, adoptions, (re)submissions and new proposals; whether anything is left to wait for. */
async function round(s: SlurmStudy, o: StudySlurmOptions, state: { more: boolean; spent?: string; cancelSent?: boolean }): Promise<boolean> {
  await s.snapshot();
  const fates = s.live().map((p) => [p, s.fate(p)] as const);
  s.report();
  let flight = fates.filter(([, f]) => f === 'flight').length;
  if (s.cancelled) {
    // exp cancel lists the jobs it cancels: one this run submitted meanwhile is cancelled here. Nothing new is submitted.
    if (!state.cancelSent) await s.cancelRest();
    state.cancelSent = true;
    return flight > 0;
  }
  let waiting = 0;
  for (const [p, f] of fates) {
    if (f !== 'needs') continue;
    if (await s.adopt(p)) flight++;
    else if (flight < o.workers) {
      await s.submit(p);
      flight++;
    } else waiting++;
  }
  // Proposals already made go first: a new one waits for a free slot.
  if (waiting === 0 && state.more && flight < o.workers) {
    const r = await propose(s, o, o.workers - flight, state);
    state.more = r.more;
    flight += r.submitted;
  }
  return flight > 0 || waiting > 0 || state.more;
}

/** Runs the study on Slurm until every proposal has ended (or a cancel, or a stop of this process). */
export async function runStudyOnSlurm(plan: Plan, study: Study, o: StudySlurmOptions): Promise<StudySlurmEnd> {
  const s = new SlurmStudy(plan, study, o);
  const stopper = new Stopper((sig) => o.say(`${sig}: exp stops following the study; its jobs go on in Slurm`)).install();
  const state: { more: boolean; spent?: string; cancelSent?: boolean } = { more: true };
  try {
    for (;;) {
      const waiting = await round(s, o, state);
      if (stopper.stopping) return { end: 'interrupted', failed: [...s.failed], rows: await s.rows(), ...(state.spent ? { spent: state.spent } : {}) };
      if (!waiting) break;
      await sleep(o.pollMs ?? 2000);
    }
  } finally {
    stopper.uninstall();
  }
  return { end: s.cancelled ? 'cancelled' : 'done', failed: [...s.failed], rows: await s.rows(), ...(state.spent ? { spent: state.spent } : {}) };
}
