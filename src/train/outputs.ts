/**
 * What a training run writes besides checkpoints: metrics.jsonl, curves.png, the tracking
 * events, summary.json and the result metrics, all built here so the trainer (run.ts) only
 * orchestrates. Derived files are brought back in line with the checkpoint on a resume, so
 * every epoch appears once in metrics.jsonl and once in events.jsonl.
 */
import { existsSync } from 'node:fs';
import { basename, join } from 'node:path';
import type { BackendInfo } from '../backend/types.js';
import type { RunConfig } from '../config/normalise.js';
import type { Dataset } from '../data/planet.js';
import { readEvents, type EndStatus, type EventLog } from '../track/events.js';
import { runPath } from '../store/layout.js';
import { writeMetrics, writeSummary } from '../store/run.js';
import type { EpochLine, Metrics, PointMeta, RunSummary } from '../store/types.js';
import { flatten } from '../util/object.js';
import { appendText, writeFileAtomic } from '../util/fsx.js';
import { curvesPng } from './curves.js';
import { resultMetrics } from '../track/results.js';
import { monitorMode, type EpochRecord, type LoopState, type StopReason } from './loop.js';
import type { Split } from '../core/data.js';

const lineOf = (r: EpochRecord): EpochLine => ({ epoch: r.epoch, ...r.metrics, lr: r.lr, seconds: r.seconds });

export class RunOutputs {
  constructor(
    private readonly dir: string,
    private readonly cfg: RunConfig,
    private readonly point: PointMeta,
    private readonly events: EventLog,
  ) {}

  /** Logs the run's start: its params, source tags and dataset; then the epochs the checkpoint has that the log lacks. */
  started(state: LoopState, resumed: boolean, backend: BackendInfo, ds: Dataset, split: Split): void {
    const swept = Object.keys(this.point.params);
    this.events.append({
      type: 'run_started',
      key: this.point.key,
      name: basename(this.dir),
      experiment: this.point.experiment,
      sweep: this.point.sweep,
      params: flatten(this.cfg),
      resumed,
      tags: {
        'exp.backend': backend.name,
        'exp.device': backend.device,
        'exp.split_hash': split.hash,
        'exp.data_fingerprint': ds.fingerprint,
        'exp.uid': this.point.uid,
        'exp.swept': JSON.stringify(swept),
      },
    });
    const logged = new Set(readEvents(this.dir).events.flatMap((e) => (e.type === 'dataset' ? ['dataset'] : [])));
    if (!logged.has('dataset')) {
      this.events.append({
        type: 'dataset',
        name: `${this.cfg.data.path.split('/').filter(Boolean).at(-1) ?? 'data'}`,
        digest: ds.fingerprint.slice(0, 16),
        source: this.cfg.data.path,
        split_hash: split.hash,
        profile: {
          images: ds.names.length,
          train: split.train.length,
          validation: split.val.length,
          tags: ds.tags.length,
          image_size: this.cfg.data.image_size,
        },
      });
    }
    // Bring the derived files in line with the checkpoint: history past it is replayed.
    writeMetrics(this.dir, state.history.map(lineOf));
    const epochs = new Set(readEvents(this.dir).events.flatMap((e) => (e.type === 'epoch' ? [e.epoch] : [])));
    for (const h of state.history) if (!epochs.has(h.epoch)) this.events.append({ type: 'epoch', epoch: h.epoch, metrics: h.metrics });
  }

  /** After each epoch (its checkpoints saved): metrics.jsonl, the epoch event, the curves. */
  async epoch(r: EpochRecord, state: LoopState, baselineFbeta?: number): Promise<void> {
    appendText(runPath(this.dir, 'metrics'), JSON.stringify(lineOf(r)) + '\n');
    this.events.append({ type: 'epoch', epoch: r.epoch, metrics: r.metrics });
    // Training speed per epoch, with the resource samples (MLflow's system metrics, step = epoch).
    if (Number.isFinite(r.trainImagesPerSecond))
      this.events.append({ type: 'system', step: r.epoch, metrics: { 'system/images_per_second': r.trainImagesPerSecond } });
    const points = state.history.map((h) => ({
      epoch: h.epoch,
      loss: h.metrics.loss!,
      val_loss: h.metrics.val_loss!,
      fbeta: h.metrics.fbeta!,
      val_fbeta: h.metrics.val_fbeta!,
    }));
    writeFileAtomic(
      runPath(this.dir, 'curves'),
      await curvesPng(points, `${this.cfg.name} / ${basename(this.dir)}`, this.cfg.metrics.beta, {
        ...(state.best ? { bestEpoch: state.best.epoch } : {}),
        ...(baselineFbeta !== undefined ? { baselineFbeta } : {}),
      }),
    );
  }

  /** Writes summary.json from the final state. */
  summary(init: {
    stop: StopReason;
    state: LoopState;
    backend: BackendInfo;
    final: Metrics | null;
    baseline: { k: number; fbeta: number };
    started: number;
    evalImagesPerSecond: number | null;
    tensors: { at_start: number; after_each_epoch: number[] };
    params: { total: number; trainable: number };
    split: Split;
    tags: string[];
    peakRssMb: number;
  }): RunSummary {
    const { stop, state } = init;
    const best = state.best ? state.history.find((h) => h.epoch === state.best!.epoch) : undefined;
    const trainIps = state.history.length ? state.history.reduce((a, h) => a + h.trainImagesPerSecond, 0) / state.history.length : null;
    const summary: RunSummary = {
      status: stop.status,
      reason: stop.reason,
      key: this.point.key,
      name: basename(this.dir),
      backend: init.backend.name,
      device: init.backend.device,
      epochs_completed: state.epoch,
      epochs_planned: this.cfg.training.epochs,
      monitor: this.cfg.checkpoint.monitor,
      mode: monitorMode(this.cfg),
      best: best ? { epoch: best.epoch, metrics: best.metrics } : null,
      final: init.final,
      baseline: { constant_top_k: init.baseline.k, val_fbeta: init.baseline.fbeta },
      duration_s: (Date.now() - init.started) / 1000,
      images_per_second: { train: trainIps, eval: init.evalImagesPerSecond },
      peak_rss_mb: init.peakRssMb,
      tensors: init.tensors,
      params: init.params,
      split: { train: init.split.train.length, val: init.split.val.length, hash: init.split.hash },
      tags: init.tags,
    };
    writeSummary(this.dir, summary);
    return summary;
  }

  /** Logs the end: result metrics, the artifacts, and run_ended with a summary for the run's note. */
  ended(status: EndStatus, reason: string, summary: RunSummary | null, artifacts: readonly string[]): void {
    if (summary) this.events.append({ type: 'result', metrics: resultMetrics(summary.best, summary.final, summary.baseline.val_fbeta) });
    for (const a of artifacts) if (existsSync(join(this.dir, a))) this.events.append({ type: 'artifact', path: a });
    this.events.append({
      type: 'run_ended',
      status,
      reason,
      ...(summary
        ? {
            summary: {
              best_epoch: summary.best?.epoch ?? null,
              ...resultMetrics(summary.best, summary.final, summary.baseline.val_fbeta),
              baseline_top_k: summary.baseline.constant_top_k,
              duration_s: summary.duration_s,
              train_images_per_second: summary.images_per_second.train,
            },
          }
        : {}),
    });
  }
}

/**
 * The checkpoint files a run uploads when it ends (tracking.log_checkpoints): 'full' uploads
 * the best and last checkpoints whole, enough to resume on another machine. ('model' is the
 * MLflow model event, which needs no files of the folder's own; 'none' uploads nothing.)
 */
export const checkpointArtifacts = (which: 'none' | 'model' | 'full'): string[] => (which === 'full' ? ['checkpoints/best', 'checkpoints/last'] : []);
