import { defineCommand } from './command.js';
import { EXIT } from './io.js';
import { table } from './report.js';
import { JSON_FLAG, QUEUE_FLAG } from './flags.js';
import { checkReachable, listJobs, openQueue, parseQueueUrl, type JobData } from '../exec/queue.js';
import { UsageError } from '../errors.js';
import type { Queue } from 'bullmq';

const SWEEP_FILTER_FLAG = { type: 'string', arg: 'NAME', description: "Only this sweep's points." } as const;

async function withQueue<T>(url: string | undefined, f: (q: Queue<JobData>) => Promise<T>): Promise<T> {
  if (!url) throw new UsageError({ code: 'USAGE', message: 'give the queue with --queue redis://HOST:PORT' });
  const conn = parseQueueUrl(url);
  await checkReachable(conn);
  const queue = openQueue(conn);
  try {
    return await f(queue);
  } finally {
    await queue.close();
  }
}

const describeProgress = (p: unknown): string => {
  const x = p as { epoch?: number; batch?: number; batches?: number } | undefined;
  return x?.epoch ? `epoch ${x.epoch}${x.batch ? ` batch ${x.batch}/${x.batches}` : ''}` : '';
};

export const queueStatusCommand = defineCommand({
  name: 'queue status',
  summary: 'Show the queue: counts by state, and each point with its state, worker, progress and failure.',
  usage: 'queue status --queue URL [--sweep NAME] [--json]',
  details: 'States are BullMQ\'s: waiting, active, delayed, completed, failed; "stalled" counts how often a dead worker\'s point was handed over.',
  positionals: { name: 'argument', max: 0 },
  flags: { queue: QUEUE_FLAG, sweep: SWEEP_FILTER_FLAG, json: JSON_FLAG },
  async run(_args, flags, io) {
    return withQueue(flags.queue, async (queue) => {
      const rows = await listJobs(queue, flags.sweep);
      if (flags.json) {
        io.stdout.write(JSON.stringify(rows, null, 2) + '\n');
        return EXIT.ok;
      }
      const counts = rows.reduce<Record<string, number>>((c, r) => ({ ...c, [r.state]: (c[r.state] ?? 0) + 1 }), {});
      io.stdout.write(
        `${parseQueueUrl(flags.queue!).shown}: ${
          Object.entries(counts)
            .map(([s, n]) => `${n} ${s}`)
            .join(', ') || 'empty'
        }; ${rows.reduce((a, r) => a + r.stalled, 0)} stalled handovers\n\n`,
      );
      if (rows.length > 0) {
        io.stdout.write(
          table(
            ['sweep', 'run', 'state', 'worker', 'progress', 'attempts', 'stalled', 'reason'],
            rows.map((r) => [
              r.sweep,
              r.name,
              r.state,
              r.worker ?? '',
              describeProgress(r.progress),
              String(r.attempts),
              String(r.stalled),
              (r.reason ?? '').split('\n')[0]!.slice(0, 80),
            ]),
          ),
        );
      }
      return EXIT.ok;
    });
  },
});

export const queueRetryCommand = defineCommand({
  name: 'queue retry-failed',
  summary: "Put the queue's failed points back to waiting, so workers run them again (from their last checkpoint).",
  usage: 'queue retry-failed --queue URL [--sweep NAME]',
  positionals: { name: 'argument', max: 0 },
  flags: { queue: QUEUE_FLAG, sweep: SWEEP_FILTER_FLAG },
  async run(_args, flags, io) {
    return withQueue(flags.queue, async (queue) => {
      const failed = (await queue.getFailed()).filter((j) => !flags.sweep || j.data?.spec?.sweep === flags.sweep);
      for (const j of failed) await j.retry('failed');
      io.stdout.write(
        `${failed.length} failed point${failed.length === 1 ? '' : 's'} back to waiting${failed.length ? `: ${failed.map((j) => j.name).join(', ')}` : ''}\n`,
      );
      return EXIT.ok;
    });
  },
});
