/**
 * `exp run FILE --queue URL`: turns a written plan into queue jobs (one per point not already
 * finished here), then follows them until every one has ended (unless detached).
 */
import { join } from 'node:path';
import type { Queue } from 'bullmq';
import { MAX_EXPERIMENT_BYTES, type Plan } from '../sweep/plan.js';
import { readFileBounded } from '../util/fsx.js';
import { withoutCredentials } from '../track/sync-map.js';
import { RUN_FILES, SWEEP_FILES, runPath, sweepPath } from '../store/layout.js';
import { readPoint, readRunRecord } from '../store/run.js';
import { isFinished, type SweepIndex } from '../store/types.js';
import { enqueue, jobIdOf, listJobs, type JobData, type JobRow } from './queue.js';

export interface Submitted {
  added: string[];
  existing: string[];
  finishedHere: string[];
}

/** Enqueues every point of the written sweep that has not finished here (of those with a job id in `only`, when given). */
export async function submitSweep(
  queue: Queue<JobData>,
  plan: Plan,
  sweepDir: string,
  index: SweepIndex,
  env: NodeJS.ProcessEnv,
  only?: ReadonlySet<string>,
): Promise<Submitted> {
  const cfg = plan.experiment;
  const uri = cfg.tracking.uri || env.MLFLOW_TRACKING_URI;
  const tracking = uri ? { uri: withoutCredentials(uri), experiment: cfg.tracking.experiment || env.MLFLOW_EXPERIMENT_NAME || cfg.name } : null;
  const rule = cfg.sweep?.early_stop;
  const experimentText = readFileBounded(sweepPath(sweepDir, 'experiment'), MAX_EXPERIMENT_BYTES, SWEEP_FILES.experiment).toString('utf8');
  const finishedHere: string[] = [];
  const items: Omit<JobData, 'version' | 'submitted'>[] = [];
  for (const entry of index.points) {
    if (only && !only.has(jobIdOf({ sweep: index.sweep, entry }))) continue;
    const dir = join(sweepDir, entry.dir);
    const status = readRunRecord(dir)?.status;
    if (isFinished(status)) {
      finishedHere.push(entry.dir);
      continue;
    }
    const point = readPoint(dir);
    items.push({
      spec: {
        experiment: index.experiment,
        sweep: index.sweep,
        sweepUid: index.uid,
        file: index.file,
        experimentText,
        entry,
        uid: point.uid,
        configText: readFileBounded(runPath(dir, 'config'), MAX_EXPERIMENT_BYTES, RUN_FILES.config).toString('utf8'),
      },
      tracking,
      earlyStop: rule ? { rule, monitor: cfg.checkpoint.monitor } : null,
    });
  }
  return { ...(await enqueue(queue, items)), finishedHere };
}

const progressOf = (r: JobRow): string => {
  const p = r.progress as { epoch?: number; batch?: number; batches?: number } | undefined;
  return p?.epoch ? ` epoch ${p.epoch}${p.batch ? ` batch ${p.batch}/${p.batches}` : ''}` : '';
};

export interface FollowOptions {
  /** The job ids this submitter put on the queue (or found there): each must be there until it ends. */
  expected: readonly string[];
  /** Puts the points of these job ids back on the queue; returns the ids now queued (a point finished here is not). */
  requeue: (ids: string[]) => Promise<string[]>;
  pollMs?: number;
}

const ended = (state: string): boolean => state === 'completed' || state === 'failed';

const lineOf = (r: JobRow): string =>
  `${r.name}: ${r.state}${r.worker && r.state === 'active' ? ` on ${r.worker}` : ''}${r.state === 'active' ? progressOf(r) : ''}${r.state === 'failed' && r.reason ? `: ${r.reason.split('\n')[0]}` : ''}`;

/**
 * Prints each change of the sweep's jobs until all have completed or failed; returns the final
 * rows. Jobs can vanish: a Redis restarted without persistence (or flushed) forgets them, and
 * no worker would ever take them again. A job that ended before it vanished keeps its last
 * row; the others are said to be lost and put back on the queue, so the sweep still ends.
 */
export async function followSweep(queue: Queue<JobData>, sweep: string, say: (line: string) => void, opts: FollowOptions): Promise<JobRow[]> {
  const seen = new Map<string, string>();
  const last = new Map<string, JobRow>();
  const expected = new Set(opts.expected);
  for (;;) {
    const rows = await listJobs(queue, sweep);
    for (const r of rows) {
      expected.add(r.id);
      last.set(r.id, r);
      const line = lineOf(r);
      if (seen.get(r.id) !== line) {
        seen.set(r.id, line);
        say(line);
      }
    }
    const listed = new Set(rows.map((r) => r.id));
    // A job between two states can be missing from one listing: only one Redis no longer has is gone.
    const gone: string[] = [];
    for (const id of expected) if (!listed.has(id) && !ended(last.get(id)?.state ?? '') && !(await queue.getJob(id))) gone.push(id);
    // Those not put back finished in the submitter's own runs folder: completed, as far as it knows.
    for (const id of gone.length > 0 ? await putBack(gone, say, opts) : [])
      last.set(id, { id, name: last.get(id)?.name ?? id, state: 'completed', worker: null, attempts: 0, stalled: 0, progress: null, reason: null, sweep });
    const all = [...expected].map((id) => (listed.has(id) ? rows.find((r) => r.id === id) : last.get(id)));
    if (gone.length === 0 && all.length > 0 && all.every((r) => r !== undefined && ended(r.state))) return all as JobRow[];
    await new Promise((r) => setTimeout(r, opts.pollMs ?? 2000));
  }
}

/** Says which jobs the queue lost and enqueues their points again; returns those not put back. */
async function putBack(gone: string[], say: (line: string) => void, opts: FollowOptions): Promise<string[]> {
  say(
    `the queue lost ${gone.length} unfinished job${gone.length === 1 ? '' : 's'} of this sweep (Redis restarted without persistence, or was flushed); putting ${gone.length === 1 ? 'it' : 'them'} back: ${gone.join(', ')}`,
  );
  const added = await opts.requeue(gone);
  const missing = gone.filter((id) => !added.includes(id));
  if (missing.length > 0) say(`not put back (completed in this runs folder): ${missing.join(', ')}`);
  return missing;
}
