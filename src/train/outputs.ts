/**
 * What a training run writes besides checkpoints: metrics.jsonl, curves.png, the tracking
 * events (built by track/event-builders.ts; the trainer appends them only here), summary.json
 * and the result metrics, so the trainer (run.ts) only orchestrates. Derived files are brought
 * back in line with the checkpoint on a resume, so every epoch appears once in metrics.jsonl
 * and once in events.jsonl.
 */
import { existsSync } from 'node:fs';
import { basename, join } from 'node:path';
import type { BackendInfo } from '../backend/types.js';
import type { RunConfig } from '../config/normalise.js';
import type { Dataset } from '../data/planet.js';
import { readEvents, type EndStatus, type EventLog } from '../track/events.js';
import { endArtifacts, RUN_FILES, runPath } from '../store/layout.js';
import { writeMetrics, writeSummary } from '../store/run.js';
import { isFinished, type EpochLine, type Metrics, type PointMeta, type RunSummary } from '../store/types.js';
import { appendText, writeFileAtomic } from '../util/fsx.js';
import { curvesPng } from './curves.js';
import {
  checkpointDoneEvent,
  checkpointEvent,
  datasetEvent,
  endArtifactsOf,
  endEvents,
  epochEvent,
  modelEvent,
  rungEvent,
  runStartedEvent,
  systemEvent,
} from '../track/event-builders.js';
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
    this.events.append(runStartedEvent(basename(this.dir), this.cfg, this.point, { resumed, backend, splitHash: split.hash, dataFingerprint: ds.fingerprint }));
    const logged = new Set(readEvents(this.dir).events.flatMap((e) => (e.type === 'dataset' ? ['dataset'] : [])));
    if (!logged.has('dataset')) {
      const [train, val] = [split.train.length, split.val.length];
      this.events.append(
        datasetEvent(this.cfg, { fingerprint: ds.fingerprint, splitHash: split.hash, images: ds.names.length, train, val, tags: ds.tags.length }),
      );
    }
    // Bring the derived files in line with the checkpoint: history past it is replayed.
    writeMetrics(this.dir, state.history.map(lineOf));
    const epochs = new Set(readEvents(this.dir).events.flatMap((e) => (e.type === 'epoch' ? [e.epoch] : [])));
    for (const h of state.history) if (!epochs.has(h.epoch)) this.events.append(epochEvent(h.epoch, h.metrics));
  }

  /** After each epoch (its checkpoints saved): metrics.jsonl, the epoch event, the curves. */
  async epoch(r: EpochRecord, state: LoopState, baselineFbeta?: number): Promise<void> {
    appendText(runPath(this.dir, 'metrics'), JSON.stringify(lineOf(r)) + '\n');
    this.events.append(epochEvent(r.epoch, r.metrics));
    // Training speed per epoch, with the resource samples (MLflow's system metrics, step = epoch).
    if (Number.isFinite(r.trainImagesPerSecond)) this.events.append(systemEvent(r.epoch, { 'system/images_per_second': r.trainImagesPerSecond }));
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
    featureCache?: RunSummary['feature_cache'];
  }): RunSummary {
    const { stop, state } = init;
    const best = state.best ? state.history.find((h) => h.epoch === state.best!.epoch) : undefined;
    const meanTrainImagesPerSecond = state.history.length ? state.history.reduce((a, h) => a + h.trainImagesPerSecond, 0) / state.history.length : null;
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
      images_per_second: { train: meanTrainImagesPerSecond, eval: init.evalImagesPerSecond },
      peak_rss_mb: init.peakRssMb,
      tensors: init.tensors,
      params: init.params,
      split: { train: init.split.train.length, val: init.split.val.length, hash: init.split.hash },
      tags: init.tags,
      ...(init.featureCache ? { feature_cache: init.featureCache } : {}),
    };
    writeSummary(this.dir, summary);
    return summary;
  }

  /** Logs the end of a run that trained to its stop: the takeover uploads done (`uploaded`: a queued run's), its model, then ended(). */
  finished(status: EndStatus, reason: string, summary: RunSummary, uploaded: boolean): void {
    if (uploaded && isFinished(status)) this.events.append(checkpointDoneEvent());
    const model = modelEvent(this.cfg, status, summary.best, true);
    if (model) this.events.append(model);
    this.ended(status, reason, summary, endArtifactsOf(this.cfg, status, endArtifacts(this.dir)));
  }

  /** Logs the end: result metrics, the artifacts (those in the folder), and run_ended with a summary for the run's note. */
  ended(status: EndStatus, reason: string, summary: RunSummary | null, artifacts: readonly string[]): void {
    const present = artifacts.filter((a) => existsSync(join(this.dir, a)));
    for (const e of endEvents(status, reason, summary, present)) this.events.append(e);
  }

  /** A checkpoint staged under checkpoints/ for another worker's takeover (queued runs). */
  checkpointStaged(staged: string): void {
    this.events.append(checkpointEvent(RUN_FILES.checkpoints, staged));
  }

  /** A sweep scheduler's go-on at a rung, with its numbers. */
  rung(epoch: number, reason: string): void {
    this.events.append(rungEvent(epoch, reason));
  }
}
