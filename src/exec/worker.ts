/**
 * `exp worker`: the consumer side of queued sweeps. A light parent (never loads TensorFlow.js)
 * that takes jobs from the queue, writes each point's run folder under its own runs folder,
 * and trains it in an `exp train` child, exactly as `exp run` does locally.
 *
 * Ownership and takeover: BullMQ holds a lock on each active job that this process renews;
 * if the worker dies, the stalled-job check hands the job to another worker, which resumes
 * the point from its last checkpoint: from the run folder when the runs folder is shared,
 * else from the tracking server, where queued runs upload each checkpoint. A worker stopped
 * with Ctrl-C stops its children at the next batch (their position saved) and puts their
 * jobs back in the queue.
 */
import { hostname } from 'node:os';
import { dirname } from 'node:path';
import { existsSync } from 'node:fs';
import { Worker, WaitingError, DelayedError, UnrecoverableError, type Job } from 'bullmq';
import { Redis } from 'ioredis';
import { clientFromEnv } from '../mlflow/client.js';
import { materializePoint, readSweepRanking } from '../store/sweep.js';
import { checkpointDir } from '../store/layout.js';
import { readRunRecord, runFolderBusy } from '../store/run.js';
import { EXIT_BUSY, settleAfterExit } from '../store/status.js';
import { STALE_MS } from '../store/lock.js';
import { spawnTrain, type TrainChild } from './child.js';
import { MedianPruner, type Curve, type Curves, type SweepPruner } from './prune.js';
import { AshaPruner, schedulerMetric } from './asha-pruner.js';
import { holdAt, judgeEpoch } from './local.js';
import type { RunConfig } from '../config/normalise.js';
import { QUEUE_NAME, checkReachable, listJobs, openQueue, type JobData, type QueueConn } from './queue.js';
import { settleParentByUid } from '../track/sync-runs.js';
import { fetchCheckpoint } from './takeover.js';
import { checkJob, jobTracking, JobInvalid, pinTracking, trackedConfigText, trustedServer, type CheckedJob, type JobTracking } from './trust.js';
import { withoutCredentials } from '../track/sync-map.js';
import { resultOfFolder } from './study-driver.js';

export interface WorkerOptions {
  conn: QueueConn;
  runsDir: string;
  /** Points trained at once (default 1, or one per GPU). */
  concurrency: number;
  gpus?: readonly string[];
  env: NodeJS.ProcessEnv;
  /** The tracking server this worker trusts with its credentials (--tracking-uri); else env.MLFLOW_TRACKING_URI. */
  trackingUri?: string;
  /** One line per event. */
  say: (line: string) => void;
  /** This worker's name in the queue (shown by `exp queue status`). */
  name?: string;
  /** Exit once the queue has nothing waiting, delayed or active. */
  exitWhenIdle?: boolean;
  /** BullMQ's lock on an active job and its stalled-job check (defaults 30 s, 30 s). */
  lockMs?: number;
  stalledMs?: number;
}

/** The other points' curves, kept in Redis so that every worker's pruning sees every point. */
export class RedisCurves implements Curves {
  constructor(
    private readonly redis: Redis,
    private readonly sweepUid: string,
  ) {}
  private key = (metric: string): string => `exp:curves:${this.sweepUid}:${metric}`;

  async all(metric: string): Promise<Map<string, Curve>> {
    const h = await this.redis.hgetall(this.key(metric));
    return new Map(Object.entries(h).map(([k, v]) => [k, JSON.parse(v) as number[]]));
  }

  async report(point: string, metric: string, epoch: number, value: number): Promise<void> {
    const cur = await this.redis.hget(this.key(metric), point);
    const curve = cur ? (JSON.parse(cur) as (number | null)[]) : [];
    while (curve.length < epoch) curve.push(null);
    curve[epoch - 1] = value;
    await this.redis.hset(this.key(metric), point, JSON.stringify(curve));
  }
}

/**
 * A job's early-termination rule with its curves in Redis: median stopping, or ASHA/Hyperband
 * following the sweep's ranking metric (sweep.yaml, written with the point) with one curve set
 * per bracket. Hyperband's brackets come from this point's training.epochs (give brackets when
 * training.epochs is swept).
 */
function queuePruner(data: JobData, config: RunConfig, dir: string, redis: Redis): SweepPruner {
  const { rule, monitor } = data.earlyStop!;
  const uid = data.spec.sweepUid;
  if (rule.rule !== 'asha' && rule.rule !== 'hyperband') return new MedianPruner(rule, monitor, new RedisCurves(redis, uid));
  return new AshaPruner({
    rule,
    ...schedulerMetric(rule, readSweepRanking(dirname(dir)), monitor),
    study: data.spec.sweep,
    maxEpochs: config.training.epochs,
    indexOf: () => data.spec.entry.index,
    curvesOf: (bracket) => new RedisCurves(redis, `${uid}:${rule.rule}${bracket}`),
  });
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

export async function runWorker(opts: WorkerOptions): Promise<{ completed: number; failed: number; requeued: number }> {
  const trusted = trustedServer(opts.trackingUri, opts.env);
  await checkReachable(opts.conn);
  const name = opts.name ?? `${hostname()}:${process.pid}`;
  const counts = { completed: 0, failed: 0, requeued: 0 };
  const children = new Set<TrainChild>();
  const freeGpus = [...(opts.gpus ?? [])];
  const redis = new Redis({ ...(opts.conn.connection as object), lazyConnect: false });
  redis.on('error', () => undefined); // never printed by ioredis: its errors can carry the password (see openQueue)
  const queue = openQueue(opts.conn);
  let stopping = 0;
  /** The worker's credentials go only to the worker's own server (see trust.ts). */
  const clientOf = (t: JobTracking): ReturnType<typeof clientFromEnv> => clientFromEnv(t.uri, t.credentials ? opts.env : {});

  /** When every point of the job's sweep has ended, its MLflow parent run ends too (no one worker has all the folders). */
  const settleParent = async (data: JobData, track: JobTracking | null): Promise<void> => {
    if (!track) return;
    try {
      const jobs = await listJobs(queue, data.spec.sweep);
      if (jobs.length === 0 || jobs.some((j) => j.state !== 'completed' && j.state !== 'failed')) return;
      await settleParentByUid(clientOf(track), track.experiment, data.spec.sweepUid, jobs.some((j) => j.state === 'failed') ? 'FAILED' : 'FINISHED');
    } catch (e) {
      opts.say(`MLflow: could not settle the sweep's parent run: ${(e as Error).message}`);
    }
  };

  /** Stopped with this worker (also before its child wrote anything): the job goes back, and the next worker resumes it. */
  const backToQueue = async (job: Job<JobData>, token: string | undefined, label: string, seconds: number | string): Promise<never> => {
    counts.requeued++;
    opts.say(`${label}: stopped with the worker after ${seconds} s; back to the queue`);
    await job.moveToWait(token);
    throw new WaitingError();
  };

  /** A job's data is untrusted: checked before anything is written; a job that fails the check fails for good, with its coded reason. */
  const admit = (job: Job<JobData>): CheckedJob => {
    try {
      return checkJob(job.id ?? '', job.data);
    } catch (e) {
      if (!(e instanceof JobInvalid)) throw e;
      counts.failed++;
      opts.say(`job ${JSON.stringify(job.id ?? '').slice(0, 60)} refused: ${e.message}`);
      throw new UnrecoverableError(`${e.code}: ${e.message}\nfix: ${e.fix ?? ''}`);
    }
  };
  const settleJob = (job: Job<JobData> | undefined): void => {
    if (!job) return;
    let checked: CheckedJob;
    try {
      checked = checkJob(job.id ?? '', job.data);
    } catch {
      return; // a refused job wrote nothing and has no run to settle
    }
    void settleParent(checked.data, jobTracking(checked.data, checked.config, trusted, opts.env));
  };

  const processor = async (job: Job<JobData>, token?: string): Promise<{ status: string }> => {
    const { data, config } = admit(job);
    const track = jobTracking(data, config, trusted, opts.env);
    const dir = materializePoint(opts.runsDir, { ...data.spec, configText: trackedConfigText(config, track) });
    const label = `${data.spec.experiment}/${data.spec.sweep}/${data.spec.entry.dir}`;
    const before = readRunRecord(dir)?.status;
    if (before === 'completed' || before === 'pruned') {
      opts.say(`${label}: already ${before} here`);
      return { ...resultOfFolder(dir), status: before };
    }
    // A worker that died may have left its child finishing its batch: wait for the folder's lock.
    const deadline = Date.now() + STALE_MS() + 30_000;
    while (runFolderBusy(dir).busy && Date.now() < deadline && !stopping) await sleep(1000);
    if (runFolderBusy(dir).busy) {
      await job.moveToDelayed(Date.now() + 10_000, token);
      throw new DelayedError();
    }
    const env: NodeJS.ProcessEnv = { ...opts.env, EXP_LAUNCHER: 'queue', EXP_WORKER: name };
    pinTracking(env, track);
    if (track) {
      if (track.note) opts.say(`${label}: ${track.note}`);
      env.EXP_UPLOAD_CHECKPOINTS = '1';
      const server = withoutCredentials(track.uri);
      if (!existsSync(checkpointDir(dir, 'last'))) {
        try {
          const got = await fetchCheckpoint(clientOf(track), track.experiment, data.spec.uid, dir);
          if (got)
            opts.say(
              `${label}: resuming another worker's checkpoint ${got.label} (${got.files} files, ${(got.bytes / 2 ** 20).toFixed(1)} MiB) from ${server}`,
            );
        } catch (e) {
          opts.say(`${label}: could not fetch a checkpoint from ${server} (${(e as Error).message}); starting from the last local state`);
        }
      }
    }
    if (stopping) return backToQueue(job, token, label, 0);
    const gpu = freeGpus.shift();
    if (gpu !== undefined) env.CUDA_VISIBLE_DEVICES = gpu;
    const pruner = data.earlyStop ? queuePruner(data, config, dir, redis) : undefined;
    const hold = holdAt(pruner, data.spec.entry.dir, dir, env);
    let lastProgress = 0;
    const t0 = performance.now();
    opts.say(`${label}: started (job ${job.id}${gpu !== undefined ? `, GPU ${gpu}` : ''})`);
    const child = spawnTrain(dir, {
      env,
      output: 'quiet',
      onMessage: (m) => {
        if (m.type === 'progress' && Date.now() - lastProgress > 2000) {
          lastProgress = Date.now();
          void job.updateProgress({ epoch: m.epoch, batch: m.batch, batches: m.batches, worker: name }).catch(() => undefined);
        } else if (m.type === 'epoch') {
          void job.updateProgress({ epoch: m.epoch, done: true, worker: name }).catch(() => undefined);
          if (pruner) judgeEpoch(pruner, child, hold, data.spec.entry.dir, m.epoch, m.metrics);
        }
      },
    });
    children.add(child);
    if (stopping) child.interrupt();
    const exit = await child.exited;
    children.delete(child);
    if (gpu !== undefined) freeGpus.push(gpu);
    const seconds = ((performance.now() - t0) / 1000).toFixed(1);
    if (exit.code === EXIT_BUSY) {
      opts.say(`${label}: busy in another process; back to the queue`);
      await job.moveToDelayed(Date.now() + 10_000, token);
      throw new DelayedError();
    }
    const status = settleAfterExit(dir, exit, stopping > 0, child.pid);
    if (status === 'completed' || status === 'pruned') {
      counts.completed++;
      opts.say(`${label}: ${status} in ${seconds} s`);
      // The result goes back with the job: an adaptive study's submitter proposes from it (exec/study-queue.ts).
      return { ...resultOfFolder(dir), status };
    }
    if (status === 'killed' && stopping) return backToQueue(job, token, label, seconds);
    counts.failed++;
    const reason = readRunRecord(dir)?.reason ?? `ended ${status}`;
    opts.say(`${label}: ${status} after ${seconds} s: ${reason}`);
    throw new Error(reason);
  };

  const worker = new Worker<JobData>(QUEUE_NAME, processor, {
    connection: opts.conn.connection,
    concurrency: opts.concurrency,
    name,
    lockDuration: opts.lockMs ?? 30_000,
    stalledInterval: opts.stalledMs ?? 30_000,
    // A point may outlive several dead workers; each takeover resumes from its checkpoint.
    maxStalledCount: 10,
  });
  worker.on('error', (e) => opts.say(`queue: ${e.message}`));
  worker.on('completed', (job) => settleJob(job));
  worker.on('failed', (job) => settleJob(job));
  const onSignal = (sig: NodeJS.Signals): void => {
    stopping++;
    opts.say(
      stopping === 1
        ? `${sig}: stopping: running points finish their current batch and go back to the queue; press Ctrl-C again to abort`
        : `${sig} again: stopping now`,
    );
    for (const c of children) c.interrupt();
    if (stopping === 1) void worker.close();
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  opts.say(`worker ${name} on ${opts.conn.shown} (queue ${QUEUE_NAME}), concurrency ${opts.concurrency}, runs folder ${opts.runsDir}`);
  opts.say(
    trusted
      ? `tracking: every point to this worker's server ${withoutCredentials(trusted)}, whatever server a job names`
      : "tracking: to the server each job names, without credentials (give this worker's own with --tracking-uri or MLFLOW_TRACKING_URI)",
  );
  try {
    if (opts.exitWhenIdle) {
      let idle = 0;
      while (!stopping) {
        await sleep(1000);
        const c = await queue.getJobCounts('waiting', 'active', 'delayed', 'prioritized', 'paused');
        idle = Object.values(c).every((n) => n === 0) && children.size === 0 ? idle + 1 : 0;
        if (idle >= 3) break;
      }
      await worker.close();
    } else {
      await new Promise<void>((resolve) => worker.on('closed', () => resolve()));
    }
  } finally {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
    await worker.close().catch(() => undefined);
    await queue.close().catch(() => undefined);
    redis.disconnect();
  }
  return counts;
}
