/**
 * Trains one run folder: the unit of work. Everything comes from the folder (config.yaml,
 * point.json, and on resume its checkpoints and split); everything goes back into it.
 * `exp run`, queue workers, resume and `exp reproduce` all end here, in an `exp train` child.
 *
 * This file is the run's lifecycle: open the folder (its lock; a new identity under --force),
 * record the start, train, and record how it ended, also when it fails or a second Ctrl-C
 * aborts it. What comes before the first batch is train/prepare.ts; when which checkpoint is
 * saved, train/checkpoint-policy.ts; the launcher's settings come checked (exec/protocol.ts).
 */
import * as tf from '@tensorflow/tfjs';
import { rmSync } from 'node:fs';
import { hostname } from 'node:os';
import { randomUUID } from 'node:crypto';
import { join } from 'node:path';
import { RUN_FILES, runPath } from '../store/layout.js';
import { lockRunFolder, readPoint, readRunConfig, readRunRecord, writePoint, writeRunRecord } from '../store/run.js';
import { captureEnvironment } from '../store/environment.js';
import type { Lock } from '../store/lock.js';
import { appendText } from '../util/fsx.js';
import { ExpError, fromSystemError } from '../errors.js';
import { isFinished, type FeatureCacheRecord, type PointMeta, type RunRecord, type RunSummary } from '../store/types.js';
import type { RunConfig } from '../config/normalise.js';
import { EventLog, readEvents } from '../track/events.js';
import { flushMsFor, LiveSync } from '../track/live.js';
import { trainLoop, type EpochRecord, type LoopState, type StopReason } from './loop.js';
import { finalEvaluation } from './final.js';
import { targetsOf } from '../core/batches.js';
import { RunOutputs } from './outputs.js';
import { Progress, type Out } from './progress.js';
import { StopControl, tellParent } from './stop.js';
import type { LaunchSettings } from '../exec/protocol.js';
import { bestConstantBaseline } from '../core/metrics.js';
import { SystemSampler } from './system.js';
import { prepareRun, type Prepared } from './prepare.js';
import { CheckpointPolicy } from './checkpoint-policy.js';
import { featureHooks, openFeatureSource } from './features.js';
import { splitFrozen } from '../model/frozen.js';

export interface TrainOptions {
  out: Out;
  /** Decoded-image cache folder (default: $EXP_CACHE_DIR or ~/.cache/exp/decoded). */
  cacheDir?: string;
  /** Train even if run.json says the run ended. */
  force?: boolean;
  env?: NodeJS.ProcessEnv;
  /** The launcher's settings (read and checked by the CLI); none when `exp train` runs by hand. */
  launch?: LaunchSettings;
  /** Ends the process at once, after the run's end is recorded: a second Ctrl-C. The CLI gives it. */
  exitNow?: () => void;
}

/** Trains the run folder `dir`; returns its final record. */
export async function trainRunFolder(dir: string, opts: TrainOptions): Promise<RunRecord> {
  const cfg = readRunConfig(dir);
  const opened = await openFolder(dir, opts.force === true);
  if ('done' in opened) return opened.done;
  const life = new RunLife(dir, cfg, opened, opts);
  try {
    return await trainOpened(life);
  } catch (e) {
    throw life.failed(e);
  } finally {
    life.close();
  }
}

/** A run folder opened for training: its lock held, its identity, its record of the attempts before. */
interface Opened {
  lock: Lock;
  point: PointMeta;
  prev: RunRecord | undefined;
}

/** Takes the folder's lock; a finished run (unless forced) is left as it is: `done`. */
async function openFolder(dir: string, force: boolean): Promise<Opened | { done: RunRecord }> {
  let point = readPoint(dir);
  const lock = await lockRunFolder(dir);
  const prev = readRunRecord(dir);
  if (prev && isFinished(prev.status) && !force) {
    lock.release();
    return { done: prev };
  }
  if (force) {
    // Train from scratch: drop what the run produced, keep its config and split. It is a new
    // run, so it gets a new identity: its tracking record starts afresh (the old one stays).
    for (const f of [RUN_FILES.checkpoints, RUN_FILES.summary, RUN_FILES.curves, RUN_FILES.metrics, RUN_FILES.events, RUN_FILES.sink])
      rmSync(join(dir, f), { recursive: true, force: true });
    point = { ...point, uid: randomUUID() };
    writePoint(dir, point);
  }
  return { lock, point, prev };
}

/** The run.json of a new attempt: its identity, who launched it, where. */
function startRecord(point: PointMeta, prev: RunRecord | undefined, env: NodeJS.ProcessEnv, launch: LaunchSettings | undefined): RunRecord {
  return {
    key: point.key,
    uid: point.uid,
    name: point.name,
    status: 'running',
    created: prev?.created ?? new Date().toISOString(),
    started: new Date().toISOString(),
    attempts: (prev?.attempts ?? 0) + 1,
    pid: process.pid,
    host: hostname(),
    ...(prev?.tags ? { tags: prev.tags } : {}),
    ...(env.CUDA_VISIBLE_DEVICES !== undefined ? { gpus: env.CUDA_VISIBLE_DEVICES } : {}),
    ...(launch ? { launcher: { kind: launch.launcher, ...(launch.worker ? { worker: launch.worker } : {}) } } : {}),
  };
}

/** The run's record, log and outputs, how it ends, and the stop requests that may come before. */
class RunLife {
  readonly record: RunRecord;
  readonly env: NodeJS.ProcessEnv;
  readonly events: EventLog;
  readonly outputs: RunOutputs;
  readonly stop: StopControl;
  readonly log = (s: string): void => {
    this.opts.out.write(s);
    appendText(runPath(this.dir, 'log'), s.replaceAll('\r\x1b[2K', ''));
  };

  constructor(
    readonly dir: string,
    readonly cfg: RunConfig,
    readonly opened: Opened,
    readonly opts: TrainOptions,
  ) {
    this.env = opts.env ?? process.env;
    this.record = startRecord(opened.point, opened.prev, this.env, opts.launch);
    this.events = new EventLog(dir);
    this.outputs = new RunOutputs(dir, cfg, opened.point, this.events);
    this.stop = new StopControl({
      say: this.log,
      stillHeld: () => opened.lock.stillHeld(),
      termOnce: opts.launch?.launcher === 'slurm',
      abort: (reason) => {
        this.end('killed', reason);
        this.outputs.ended('killed', reason, null, []);
        opened.lock.release();
      },
      ...(opts.exitNow ? { exitNow: opts.exitNow } : {}),
    }).install();
  }

  get launch(): LaunchSettings | undefined {
    return this.opts.launch;
  }

  /** Writes run.json as it is now (the start, the backend chosen). */
  save(): void {
    writeRunRecord(this.dir, this.record);
  }

  end(status: RunRecord['status'], reason: string): RunRecord {
    Object.assign(this.record, { status, reason, ended: new Date().toISOString() });
    this.save();
    return this.record;
  }

  /**
   * Records a failure in the folder, its log and the tracking log before it is reported; each
   * step on its own, since a full disk may refuse some of them. Returns the error to report.
   */
  failed(e: unknown): unknown {
    const err = e instanceof ExpError ? e : (fromSystemError(e) ?? e);
    const reason = (err as Error).message;
    try {
      this.log(`failed: ${err instanceof ExpError ? err.render() : reason}\n`);
    } catch {
      /* the log itself cannot be written */
    }
    try {
      this.end('failed', reason);
    } catch {
      /* run.json cannot be written either */
    }
    try {
      this.outputs.ended('failed', reason, null, []);
    } catch {
      /* nor the event log */
    }
    return err;
  }

  close(): void {
    this.stop.uninstall();
    this.opened.lock.release();
  }
}

/** What the epochs leave for the end: how they stopped and the tensor counts (a leak shows there). */
interface Trained {
  stopped: StopReason;
  policy: CheckpointPolicy;
  live: LiveSync;
  baseline: { k: number; fbeta: number };
  tensors: { at_start: number; after_each_epoch: number[] };
  /** How the run used the shared feature cache, when it did. */
  featureCache?: FeatureCacheRecord;
}

/** Prepares, trains and ends a run whose folder is open and whose start is to be recorded. */
async function trainOpened(life: RunLife): Promise<RunRecord> {
  life.save();
  const p = await prepareRun({
    dir: life.dir,
    cfg: life.cfg,
    point: life.opened.point,
    cacheDir: life.opts.cacheDir,
    log: life.log,
    onBackend: (backend) => {
      life.record.backend = backend;
      life.record.environment = captureEnvironment();
      life.save();
    },
  });
  life.outputs.started(p.state, p.resumed, p.backend, p.ds, p.split);
  const trained = await trainEpochs(life, p);
  return finish(life, p, trained);
}

/** The training loop with its hooks: progress, checkpoints, per-epoch outputs, live tracking, the scheduler's rungs. */
async function trainEpochs(life: RunLife, p: Prepared): Promise<Trained> {
  const { cfg, dir, log, outputs, stop } = life;
  const { ds, split, state } = p;
  const baseline = bestConstantBaseline(targetsOf(ds, split.train), targetsOf(ds, split.val), ds.tags.length, cfg.metrics.beta);
  const live = new LiveSync(dir, life.env, life.launch?.pinTracking === true);
  const system = new SystemSampler(life.events, cfg.tracking.system_metrics_seconds, p.backend);
  const progress = new Progress({ write: life.opts.out.write.bind(life.opts.out), isTTY: life.opts.out.isTTY }, cfg.training.epochs, log);
  const tensors = { at_start: tf.memory().numTensors, after_each_epoch: [] as number[] };
  // A queued run: another worker may have to resume it from the tracking server.
  const onStaged = life.launch?.uploadCheckpoints
    ? (staged: string): void => {
        outputs.checkpointStaged(staged);
        live.kick();
      }
    : undefined;
  const policy = new CheckpointPolicy(dir, cfg, p, onStaged);
  // A sweep scheduler's rungs (ASHA): at these epochs the run waits for the launcher's verdict before training on.
  const hold = new Set(life.launch?.holdEpochs ?? []);
  tellParent({ type: 'started', backend: p.backend.name, epochs: cfg.training.epochs, done: state.epoch });
  // Stopped while it waited at a rung (its launcher killed): it asks again for the verdict it never got before training on.
  const unjudged = rungUnjudged(dir, hold, state, cfg.training.epochs);
  if (unjudged) {
    tellParent({ type: 'epoch', epoch: unjudged.epoch, metrics: unjudged.metrics, improved: false });
    await awaitRung(stop, outputs, unjudged.epoch, log);
  }
  const parts = splitFrozen(p.model);
  const features = openFeatureSource({ cfg, ds, splitHash: split.hash, parts, base: p.base, backend: p.backend, log, env: life.env });
  system.start();
  const stopped = await trainLoop(p.model, p.optimizer, ds, split, cfg, state, {
    ...featureHooks(features, parts, ds, split.val, cfg),
    onBatch: (b) => {
      progress.batch(b);
      tellParent({ type: 'progress', ...b });
    },
    stopRequested: () => stop.get(),
    checkpointDue: () => policy.due(),
    onPosition: (st) => policy.saveLast(st),
    onEpoch: async (r, st, improved) => {
      await policy.saveEpoch(st, improved);
      await outputs.epoch(r, st, baseline.fbeta);
      live.kick();
      tensors.after_each_epoch.push(tf.memory().numTensors);
      progress.epoch(r, cfg.checkpoint.monitor, improved);
      tellParent({ type: 'epoch', epoch: r.epoch, metrics: r.metrics, improved });
      if (hold.has(r.epoch) && r.epoch < cfg.training.epochs) await awaitRung(stop, outputs, r.epoch, log);
    },
  });
  system.stop();
  const featureCache = features?.stats();
  if (featureCache) life.record.feature_cache = featureCache;
  return { stopped, policy, live, baseline, tensors, ...(featureCache ? { featureCache } : {}) };
}

/** The recipe's final step (reload the best checkpoint, evaluate it, tune thresholds on it), the summary, and the recorded end. */
async function finish(life: RunLife, p: Prepared, t: Trained): Promise<RunRecord> {
  const { stopped, baseline } = t;
  let final: Record<string, number> | null = null;
  let evalImagesPerSecond: number | null = null;
  if (isFinished(stopped.status) && t.policy.hasBest(p.state)) {
    await t.policy.reloadBest();
    ({ final, evalImagesPerSecond } = await finalEvaluation(p.model, p.ds, p.split, life.cfg, life.dir));
  }
  const summary = life.outputs.summary({
    stop: stopped,
    state: p.state,
    backend: p.backend,
    final,
    baseline,
    started: Date.parse(life.record.started!),
    evalImagesPerSecond,
    tensors: t.tensors,
    params: p.counts,
    split: p.split,
    tags: p.ds.tags,
    peakRssMb: Math.round(process.resourceUsage().maxRSS / 1024),
    ...(t.featureCache ? { featureCache: featureCacheSummary(t.featureCache) } : {}),
  });
  life.outputs.finished(stopped.status, stopped.reason, summary, life.launch?.uploadCheckpoints === true);
  life.end(stopped.status, stopped.reason);
  await t.live.flush(flushMsFor(life.launch?.launcher));
  const best = summary.best;
  const bestText = best ? `; best epoch ${best.epoch}: val_loss ${best.metrics.val_loss!.toFixed(4)}, val_fbeta ${best.metrics.val_fbeta!.toFixed(4)}` : '';
  life.log(`${stopped.status}: ${stopped.reason}${bestText} (constant baseline val_fbeta ${baseline.fbeta.toFixed(4)}, top-${baseline.k} tags)\n`);
  p.model.dispose();
  p.optimizer.dispose();
  return life.record;
}

/** A launcher that has not answered at a rung in this long is taken to have none to give: the run goes on. */
const RUNG_WAIT_MS = 10 * 60_000;

/** Waits at a rung for the scheduler's verdict; a go-on with numbers is logged as a `rung` event (a prune ends the run at the next check). */
async function awaitRung(stop: StopControl, outputs: RunOutputs, epoch: number, log: (line: string) => void): Promise<void> {
  const v = await stop.verdict(epoch, RUNG_WAIT_MS);
  if (v.timedOut) log(`no verdict from the sweep's scheduler at epoch ${epoch} in ${RUNG_WAIT_MS / 60_000} min: going on\n`);
  else if (v.go && v.note) {
    outputs.rung(epoch, v.note);
    log(`${v.note}\n`);
  }
}

/** The last epoch's record when it is a rung the run has no verdict for (no `rung` event, and nothing of the next epoch trained). */
function rungUnjudged(dir: string, hold: ReadonlySet<number>, state: LoopState, epochs: number): EpochRecord | undefined {
  const last = state.history.at(-1);
  if (!last || last.epoch !== state.epoch || !hold.has(state.epoch) || state.epoch >= epochs) return undefined;
  if (state.position && !(state.position.epoch === state.epoch + 1 && state.position.batch === 0)) return undefined;
  return readEvents(dir).events.some((e) => e.type === 'rung' && e.epoch === state.epoch) ? undefined : last;
}

/** What summary.json says of the feature cache: the time spent filling it apart from training, and what was computed and read. */
const featureCacheSummary = (fc: FeatureCacheRecord): NonNullable<RunSummary['feature_cache']> => ({
  fill_seconds: fc.fill_seconds,
  computed: fc.computed,
  read: fc.read,
  trained_from_cache: fc.trained_from_cache,
});
