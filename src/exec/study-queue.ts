/**
 * An adaptive study on the queue (exp run --queue with sweep.tpe): the submitter holds the
 * study's lock and keeps as many proposals in flight as workers listen on the queue (at least
 * one), proposing the next from the results the jobs return (exec/worker.ts returns the run's
 * result with the job). A proposal without a job (the submitter died between journal and queue,
 * or Redis lost the job) is queued again; one that finished in this runs folder is not.
 */
import type { Queue } from 'bullmq';
import type { Plan } from '../sweep/plan.js';
import { readSweepIndex } from '../store/sweep.js';
import type { ProposalEntry } from '../store/study.js';
import { jobIdOf, listJobs, type JobData, type JobRow } from './queue.js';
import { submitSweep } from './submit.js';
import { resultOfFolder, type Study, type TrialResult } from './study-driver.js';

export interface StudyQueueOptions {
  say: (line: string) => void;
  env: NodeJS.ProcessEnv;
  /** Queue what can be proposed now and return, instead of following the study to its end. */
  detach?: boolean;
  pollMs?: number;
}

const ended = (state: string | undefined): boolean => state === 'completed' || state === 'failed';

/** The results the study's ended jobs returned, by job id (read once each). */
async function jobResults(queue: Queue<JobData>, rows: readonly JobRow[], cache: Map<string, TrialResult>): Promise<void> {
  for (const r of rows) {
    if (cache.has(r.id) || !ended(r.state)) continue;
    const job = await queue.getJob(r.id);
    if (r.state === 'failed') cache.set(r.id, { status: 'failed' });
    else if (job?.returnvalue && typeof job.returnvalue === 'object') cache.set(r.id, job.returnvalue as TrialResult);
  }
}

/** Runs the study on the queue; returns its jobs' final rows. */
export async function runStudyOnQueue(queue: Queue<JobData>, plan: Plan, study: Study, opts: StudyQueueOptions): Promise<JobRow[]> {
  const sweep = readSweepIndex(study.dir)!.sweep;
  const idOf = (p: ProposalEntry): string => jobIdOf({ sweep, entry: { index: p.index, key: p.key, name: p.name, params: p.params, dir: p.dir } });
  const results = new Map<string, TrialResult>();
  // A result returned by a job counts; else the folder here says (a point that finished here before is not queued again).
  study.results = (p) => results.get(idOf(p));
  const seen = new Map<string, string>();
  for (;;) {
    const rows = await listJobs(queue, sweep);
    await jobResults(queue, rows, results);
    const state = new Map(rows.map((r) => [r.id, r.state]));
    for (const r of rows)
      if (seen.get(r.id) !== r.state) {
        seen.set(r.id, r.state);
        opts.say(`${r.name}: ${r.state}${r.worker && r.state === 'active' ? ` on ${r.worker}` : ''}`);
      }
    const live = study.proposals().filter((p) => p.duplicate_of === undefined);
    const open = live.filter((p) => !ended(state.get(idOf(p))) && !results.has(idOf(p)));
    // Proposals journaled but not on the queue: queue them (again).
    const missing = open.filter((p) => !state.has(idOf(p))).map(idOf);
    if (missing.length > 0) await submit(queue, plan, study, opts.env, new Set(missing), results);
    let inFlight = live.filter((p) => !ended(state.get(idOf(p))) && !results.has(idOf(p))).length;
    const slots = Math.max(1, await queue.getWorkersCount());
    let more = true;
    while (inFlight < slots) {
      const dir = await study.next();
      if (!dir) {
        more = false;
        break;
      }
      const p = study.proposals().at(-1)!;
      opts.say(`proposed ${p.dir} (${p.sampler}, ${p.known.length} earlier point${p.known.length === 1 ? '' : 's'} known)`);
      await submit(queue, plan, study, opts.env, new Set([idOf(p)]), results);
      inFlight++;
    }
    if (opts.detach) return listJobs(queue, sweep);
    if (!more && inFlight === 0) {
      const ids = new Set(study.proposals().map(idOf));
      return (await listJobs(queue, sweep)).filter((r) => ids.has(r.id));
    }
    await new Promise((r) => setTimeout(r, opts.pollMs ?? 1000));
  }
}

/** Queues the points of `ids`; a point that finished in this runs folder is not queued and its result comes from here. */
async function submit(
  queue: Queue<JobData>,
  plan: Plan,
  study: Study,
  env: NodeJS.ProcessEnv,
  ids: ReadonlySet<string>,
  results: Map<string, TrialResult>,
): Promise<void> {
  const s = await submitSweep(queue, plan, study.dir, readSweepIndex(study.dir)!, env, ids);
  const index = readSweepIndex(study.dir)!;
  for (const d of s.finishedHere) {
    const e = index.points.find((p) => p.dir === d);
    if (e) results.set(jobIdOf({ sweep: index.sweep, entry: e }), resultOfFolder(`${study.dir}/${d}`));
  }
}
