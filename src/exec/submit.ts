/**
 * `exp run FILE --queue URL`: turns a written plan into queue jobs (one per point not already
 * finished here), then follows them until every one has ended (unless detached).
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Queue } from 'bullmq';
import type { Plan } from '../sweep/plan.js';
import { withoutCredentials } from '../track/sync-map.js';
import { runPath, sweepPath } from '../store/layout.js';
import { readPoint, readRunRecord } from '../store/run.js';
import type { SweepIndex } from '../store/types.js';
import { enqueue, listJobs, type JobData, type JobRow } from './queue.js';

export interface Submitted {
  added: string[];
  existing: string[];
  finishedHere: string[];
}

/** Enqueues every point of the written sweep that has not finished here. */
export async function submitSweep(queue: Queue<JobData>, plan: Plan, sweepDir: string, index: SweepIndex, env: NodeJS.ProcessEnv): Promise<Submitted> {
  const cfg = plan.experiment;
  const uri = cfg.tracking.uri || env.MLFLOW_TRACKING_URI;
  const tracking = uri ? { uri: withoutCredentials(uri), experiment: cfg.tracking.experiment || env.MLFLOW_EXPERIMENT_NAME || cfg.name } : null;
  const rule = cfg.sweep?.early_stop;
  const experimentText = readFileSync(sweepPath(sweepDir, 'experiment'), 'utf8');
  const finishedHere: string[] = [];
  const items: Omit<JobData, 'version' | 'submitted'>[] = [];
  for (const entry of index.points) {
    const dir = join(sweepDir, entry.dir);
    const status = readRunRecord(dir)?.status;
    if (status === 'completed' || status === 'pruned') {
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
        configText: readFileSync(runPath(dir, 'config'), 'utf8'),
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

/** Prints each change of the sweep's jobs until all have completed or failed; returns the final rows. */
export async function followSweep(queue: Queue<JobData>, sweep: string, say: (line: string) => void, pollMs = 2000): Promise<JobRow[]> {
  const seen = new Map<string, string>();
  for (;;) {
    const rows = await listJobs(queue, sweep);
    for (const r of rows) {
      const line = `${r.name}: ${r.state}${r.worker && r.state === 'active' ? ` on ${r.worker}` : ''}${r.state === 'active' ? progressOf(r) : ''}${r.state === 'failed' && r.reason ? `: ${r.reason.split('\n')[0]}` : ''}`;
      if (seen.get(r.id) !== line) {
        seen.set(r.id, line);
        say(line);
      }
    }
    if (rows.length > 0 && rows.every((r) => r.state === 'completed' || r.state === 'failed')) return rows;
    await new Promise((r) => setTimeout(r, pollMs));
  }
}
