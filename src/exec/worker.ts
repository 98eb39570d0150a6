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
import { STALE_MS } from '../store/lock.js';
import { launchPoint, Stopper, type PointEnd } from './launch.js';
import { MedianPruner, type Curve, type Curves, type SweepPruner } from './prune.js';
import { AshaPruner, schedulerMetric } from './asha-pruner.js';
import type { RunConfig } from '../config/normalise.js';
import { QUEUE_NAME, checkReachable, listJobs, openQueue, type JobData, type QueueConn } from './queue.js';
import { settleParentByUid } from '../track/sync-runs.js';
import { fetchCheckpoint } from './takeover.js';
import { checkJob, jobTracking, JobInvalid, pinTracking, trackedConfigText, trustedServer, type CheckedJob, type JobTracking } from './trust.js';
import { withoutCredentials } from '../track/sync-map.js';
import { isFinished } from '../store/types.js';
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

type Counts = { completed: number; failed: number; requeued: number };

/** One `exp worker`'s state: its points in training, its counts, its connections and its stop signals. */
class QueueWorker {
  readonly name: string;
  readonly counts: Counts = { completed: 0, failed: 0, requeued: 0 };
  private readonly freeGpus: string[];
  readonly redis: Redis;
  readonly queue: ReturnType<typeof openQueue>;
  worker: Worker<JobData> | undefined;
  readonly stopper: Stopper;

  constructor(
    readonly opts: WorkerOptions,
    readonly trusted: string | undefined,
  ) {
    this.name = opts.name ?? `${hostname()}:${process.pid}`;
    this.freeGpus = [...(opts.gpus ?? [])];
    this.redis = new Redis({ ...(opts.conn.connection as object), lazyConnect: false });
    this.redis.on('error', () => undefined); // never printed by ioredis: its errors can carry the password (see openQueue)
    this.queue = openQueue(opts.conn);
    this.stopper = new Stopper((sig, n) => {
      opts.say(
        n === 1
          ? `${sig}: stopping: running points finish their current batch and go back to the queue; press Ctrl-C again to abort`
          : `${sig} again: stopping now`,
      );
      if (n === 1) void this.worker?.close();
    });
  }

  /** The worker's credentials go only to the worker's own server (see trust.ts). */
  clientOf(t: JobTracking): ReturnType<typeof clientFromEnv> {
    return clientFromEnv(t.uri, t.credentials ? this.opts.env : {});
  }

  /** When every point of the job's sweep has ended, its MLflow parent run ends too (no one worker has all the folders). */
  async settleParent(data: JobData, track: JobTracking | null): Promise<void> {
    if (!track) return;
    try {
      const jobs = await listJobs(this.queue, data.spec.sweep);
      if (jobs.length === 0 || jobs.some((j) => j.state !== 'completed' && j.state !== 'failed')) return;
      await settleParentByUid(this.clientOf(track), track.experiment, data.spec.sweepUid, jobs.some((j) => j.state === 'failed') ? 'FAILED' : 'FINISHED');
    } catch (e) {
      this.opts.say(`MLflow: could not settle the sweep's parent run: ${(e as Error).message}`);
    }
  }

  settleJob(job: Job<JobData> | undefined): void {
    if (!job) return;
    let checked: CheckedJob;
    try {
      checked = checkJob(job.id ?? '', job.data);
    } catch {
      return; // a refused job wrote nothing and has no run to settle
    }
    void this.settleParent(checked.data, jobTracking(checked.data, checked.config, this.trusted, this.opts.env));
  }

  /** Stopped with this worker (also before its child wrote anything): the job goes back, and the next worker resumes it. */
  async backToQueue(job: Job<JobData>, token: string | undefined, label: string, seconds: number | string): Promise<never> {
    this.counts.requeued++;
    this.opts.say(`${label}: stopped with the worker after ${seconds} s; back to the queue`);
    await job.moveToWait(token);
    throw new WaitingError();
  }

  /** A job's data is untrusted: checked before anything is written; a job that fails the check fails for good, with its coded reason. */
  admit(job: Job<JobData>): CheckedJob {
    try {
      return checkJob(job.id ?? '', job.data);
    } catch (e) {
      if (!(e instanceof JobInvalid)) throw e;
      this.counts.failed++;
      this.opts.say(`job ${JSON.stringify(job.id ?? '').slice(0, 60)} refused: ${e.message}`);
      throw new UnrecoverableError(`${e.code}: ${e.message}\nfix: ${e.fix ?? ''}`);
    }
  }

  /** A worker that died may have left its child finishing its batch: wait for the folder's lock, else try the job again later. */
  async waitForFolder(job: Job<JobData>, token: string | undefined, dir: string): Promise<void> {
    const deadline = Date.now() + STALE_MS() + 30_000;
    while (runFolderBusy(dir).busy && Date.now() < deadline && !this.stopper.stopping) await sleep(1000);
    if (runFolderBusy(dir).busy) {
      await job.moveToDelayed(Date.now() + 10_000, token);
      throw new DelayedError();
    }
  }

  /** A queued run resumes from the tracking server's checkpoint when this machine has none (no shared runs folder). */
  async fetchTakeover(label: string, dir: string, data: JobData, track: JobTracking): Promise<void> {
    if (existsSync(checkpointDir(dir, 'last'))) return;
    const server = withoutCredentials(track.uri);
    try {
      const got = await fetchCheckpoint(this.clientOf(track), track.experiment, data.spec.uid, dir);
      if (got)
        this.opts.say(
          `${label}: resuming another worker's checkpoint ${got.label} (${got.files} files, ${(got.bytes / 2 ** 20).toFixed(1)} MiB) from ${server}`,
        );
    } catch (e) {
      this.opts.say(`${label}: could not fetch a checkpoint from ${server} (${(e as Error).message}); starting from the last local state`);
    }
  }

  /** BullMQ's processor: one job, from the check of its data to how its point ended. */
  readonly processJob = async (job: Job<JobData>, token?: string): Promise<{ status: string }> => {
    const { data, config } = this.admit(job);
    const track = jobTracking(data, config, this.trusted, this.opts.env);
    const dir = materializePoint(this.opts.runsDir, { ...data.spec, configText: trackedConfigText(config, track) });
    const label = `${data.spec.experiment}/${data.spec.sweep}/${data.spec.entry.dir}`;
    const before = readRunRecord(dir)?.status;
    if (isFinished(before)) {
      this.opts.say(`${label}: already ${before} here`);
      return { ...resultOfFolder(dir), status: before };
    }
    await this.waitForFolder(job, token, dir);
    const env: NodeJS.ProcessEnv = { ...this.opts.env };
    pinTracking(env, track);
    if (track?.note) this.opts.say(`${label}: ${track.note}`);
    if (track) await this.fetchTakeover(label, dir, data, track);
    if (this.stopper.stopping) return this.backToQueue(job, token, label, 0);
    return this.train(job, token, { data, config, dir, label, env, track });
  };

  /** Trains the job's point in its child and turns how it ended into the job's outcome. */
  private async train(job: Job<JobData>, token: string | undefined, p: PointJob): Promise<{ status: string }> {
    const gpu = this.freeGpus.shift();
    const point = p.data.spec.entry.dir;
    let lastProgress = 0;
    this.opts.say(`${p.label}: started (job ${job.id}${gpu !== undefined ? `, GPU ${gpu}` : ''})`);
    const end = await launchPoint({
      dir: p.dir,
      point,
      env: p.env,
      settings: { launcher: 'queue', worker: this.name, uploadCheckpoints: p.track !== null, pinTracking: true },
      ...(gpu !== undefined ? { gpu } : {}),
      output: 'quiet',
      ...(p.data.earlyStop ? { pruner: queuePruner(p.data, p.config, p.dir, this.redis) } : {}),
      stopper: this.stopper,
      onMessage: (m) => {
        if (m.type === 'progress' && Date.now() - lastProgress > 2000) {
          lastProgress = Date.now();
          void job.updateProgress({ epoch: m.epoch, batch: m.batch, batches: m.batches, worker: this.name }).catch(() => undefined);
        } else if (m.type === 'epoch') void job.updateProgress({ epoch: m.epoch, done: true, worker: this.name }).catch(() => undefined);
      },
    });
    if (gpu !== undefined) this.freeGpus.push(gpu);
    return this.outcome(job, token, p, end);
  }

  private async outcome(job: Job<JobData>, token: string | undefined, p: PointJob, end: PointEnd): Promise<{ status: string }> {
    const seconds = end.seconds.toFixed(1);
    if (end.status === 'busy') {
      this.opts.say(`${p.label}: busy in another process; back to the queue`);
      await job.moveToDelayed(Date.now() + 10_000, token);
      throw new DelayedError();
    }
    if (isFinished(end.status)) {
      this.counts.completed++;
      this.opts.say(`${p.label}: ${end.status} in ${seconds} s`);
      // The result goes back with the job: an adaptive study's submitter proposes from it (exec/study-queue.ts).
      return { ...resultOfFolder(p.dir), status: end.status };
    }
    if (end.status === 'killed' && this.stopper.stopping) return this.backToQueue(job, token, p.label, seconds);
    this.counts.failed++;
    const reason = readRunRecord(p.dir)?.reason ?? `ended ${end.status}`;
    this.opts.say(`${p.label}: ${end.status} after ${seconds} s: ${reason}`);
    throw new Error(reason);
  }

  /** Takes jobs until it is stopped (or, with exitWhenIdle, until the queue has nothing left for it). */
  async serve(): Promise<void> {
    const { opts } = this;
    const worker = new Worker<JobData>(QUEUE_NAME, this.processJob, {
      connection: opts.conn.connection,
      concurrency: opts.concurrency,
      name: this.name,
      lockDuration: opts.lockMs ?? 30_000,
      stalledInterval: opts.stalledMs ?? 30_000,
      // A point may outlive several dead workers; each takeover resumes from its checkpoint.
      maxStalledCount: 10,
    });
    this.worker = worker;
    if (this.stopper.stopping) void worker.close(); // a signal came before the worker existed
    worker.on('error', (e) => opts.say(`queue: ${e.message}`));
    worker.on('completed', (job) => this.settleJob(job));
    worker.on('failed', (job) => this.settleJob(job));
    opts.say(`worker ${this.name} on ${opts.conn.shown} (queue ${QUEUE_NAME}), concurrency ${opts.concurrency}, runs folder ${opts.runsDir}`);
    opts.say(
      this.trusted
        ? `tracking: every point to this worker's server ${withoutCredentials(this.trusted)}, whatever server a job names`
        : "tracking: to the server each job names, without credentials (give this worker's own with --tracking-uri or MLFLOW_TRACKING_URI)",
    );
    if (!opts.exitWhenIdle) return new Promise<void>((resolve) => worker.on('closed', () => resolve()));
    for (let idle = 0; !this.stopper.stopping && idle < 3;) {
      await sleep(1000);
      const c = await this.queue.getJobCounts('waiting', 'active', 'delayed', 'prioritized', 'paused');
      idle = Object.values(c).every((n) => n === 0) && this.stopper.children.size === 0 ? idle + 1 : 0;
    }
    await worker.close();
  }

  async close(): Promise<void> {
    await this.worker?.close().catch(() => undefined);
    await this.queue.close().catch(() => undefined);
    this.redis.disconnect();
  }
}

/** A checked job's point, as the worker trains it. */
interface PointJob {
  data: JobData;
  config: RunConfig;
  dir: string;
  label: string;
  env: NodeJS.ProcessEnv;
  track: JobTracking | null;
}

export async function runWorker(opts: WorkerOptions): Promise<Counts> {
  const trusted = trustedServer(opts.trackingUri, opts.env);
  await checkReachable(opts.conn);
  const w = new QueueWorker(opts, trusted);
  w.stopper.install();
  try {
    await w.serve();
  } finally {
    w.stopper.uninstall();
    await w.close();
  }
  return w.counts;
}
