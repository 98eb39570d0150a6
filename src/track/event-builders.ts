/**
 * One builder per event type of the tracking log (events.ts): the trainer, `exp tag`, the
 * rebuild of a damaged log (rebuild.ts) and the sink's stand-in start (sync) all make their
 * events here, so a rebuilt log says what the trainer's said. Pure: the callers read the facts
 * (from the live run, or back from the run folder) and pass them in.
 */
import type { RunConfig } from '../config/normalise.js';
import { isFinished, type PointMeta, type RunSummary } from '../store/types.js';
import { flatten } from '../util/object.js';
import type { EndStatus, TrackEvent } from './events.js';
import { resultMetrics } from './results.js';

export type EventOf<T extends TrackEvent['type']> = Extract<TrackEvent, { type: T }>;

/** What run_started's exp.* tags say beyond the point: the trainer knows them all; a folder keeps them in run.json and split/. */
export interface StartFacts {
  resumed: boolean;
  backend?: { name: string; device: string };
  splitHash?: string;
  dataFingerprint?: string;
}

export function runStartedEvent(name: string, cfg: RunConfig, point: PointMeta, f: StartFacts): EventOf<'run_started'> {
  return {
    type: 'run_started',
    key: point.key,
    name,
    experiment: point.experiment,
    sweep: point.sweep,
    params: flatten(cfg),
    resumed: f.resumed,
    tags: {
      ...(f.backend ? { 'exp.backend': f.backend.name, 'exp.device': f.backend.device } : {}),
      ...(f.splitHash !== undefined ? { 'exp.split_hash': f.splitHash } : {}),
      ...(f.dataFingerprint !== undefined ? { 'exp.data_fingerprint': f.dataFingerprint } : {}),
      'exp.uid': point.uid,
      'exp.swept': JSON.stringify(Object.keys(point.params)),
    },
  };
}

/** The data a run trained on (split/split.json records all but `images`). */
export interface DatasetFacts {
  fingerprint: string;
  /** Images in the dataset; a split covers them all, so a folder's split says train + val. */
  images: number;
  splitHash: string;
  train: number;
  val: number;
  /** The size of the tag vocabulary. */
  tags: number;
}

export function datasetEvent(cfg: RunConfig, f: DatasetFacts): EventOf<'dataset'> {
  return {
    type: 'dataset',
    name: `${cfg.data.path.split('/').filter(Boolean).at(-1) ?? 'data'}`,
    digest: f.fingerprint.slice(0, 16),
    source: cfg.data.path,
    split_hash: f.splitHash,
    profile: { images: f.images, train: f.train, validation: f.val, tags: f.tags, image_size: cfg.data.image_size },
  };
}

export const epochEvent = (epoch: number, metrics: Record<string, number>): EventOf<'epoch'> => ({ type: 'epoch', epoch, metrics });

/** Resource use (MLflow system metrics): a sampler's numbered sample, or an epoch's training speed at step = epoch. */
export const systemEvent = (step: number, metrics: Record<string, number>): EventOf<'system'> => ({ type: 'system', step, metrics });

export const resultEvent = (s: RunSummary): EventOf<'result'> => ({ type: 'result', metrics: resultMetrics(s.best, s.final, s.baseline.val_fbeta) });

export const artifactEvent = (path: string): EventOf<'artifact'> => ({ type: 'artifact', path });

/** A checkpoint staged (as `staged`, a folder under checkpoints/) for another worker's takeover; its label is its save time. */
export const checkpointEvent = (checkpointsDir: string, staged: string): EventOf<'checkpoint'> => ({
  type: 'checkpoint',
  path: `${checkpointsDir}/${staged}`,
  label: staged.replace(/^upload-/, ''),
});

export const checkpointDoneEvent = (): EventOf<'checkpoint_done'> => ({ type: 'checkpoint_done' });

export const rungEvent = (epoch: number, reason: string): EventOf<'rung'> => ({ type: 'rung', epoch, decision: 'continued', reason });

export const tagsEvent = (tags: Record<string, string>): EventOf<'tags'> => ({ type: 'tags', tags });

/**
 * The best checkpoint logged as an MLflow model, or none: only a run that ended well (completed
 * or pruned), kept its best checkpoint (`kept`: still in the folder) and tracks checkpoints.
 */
export function modelEvent(cfg: RunConfig, status: EndStatus, best: { epoch: number } | null | undefined, kept: boolean): EventOf<'model'> | undefined {
  const ok = isFinished(status);
  if (!ok || !best || !kept || !cfg.checkpoint.save_best || cfg.tracking.log_checkpoints === 'none') return undefined;
  return { type: 'model', name: 'model', step: best.epoch };
}

/** run_ended, with the numbers the run's note shows when the run wrote its summary. */
export function runEndedEvent(status: EndStatus, reason: string, s: RunSummary | null): EventOf<'run_ended'> {
  if (!s) return { type: 'run_ended', status, reason };
  const summary = {
    best_epoch: s.best?.epoch ?? null,
    ...resultMetrics(s.best, s.final, s.baseline.val_fbeta),
    baseline_top_k: s.baseline.constant_top_k,
    duration_s: s.duration_s,
    train_images_per_second: s.images_per_second.train,
  };
  return { type: 'run_ended', status, reason, summary };
}

/**
 * The checkpoint files a run uploads when it ends (tracking.log_checkpoints): 'full' uploads
 * the best and last checkpoints whole, enough to resume on another machine. ('model' is the
 * MLflow model event, which needs no files of the folder's own; 'none' uploads nothing.)
 */
export const checkpointArtifacts = (which: 'none' | 'model' | 'full'): string[] => (which === 'full' ? ['checkpoints/best', 'checkpoints/last'] : []);

/** What a run uploads when it ends, of `present` (the folder's end files, see store/layout endArtifacts): nothing when it failed. */
export const endArtifactsOf = (cfg: RunConfig, status: EndStatus, present: readonly string[]): string[] =>
  status === 'failed' ? [] : [...present, ...checkpointArtifacts(cfg.tracking.log_checkpoints)];

/** The end of a run, in the log's order: its result (when it wrote a summary), its artifacts, run_ended. */
export function endEvents(status: EndStatus, reason: string, summary: RunSummary | null, artifacts: readonly string[]): TrackEvent[] {
  return [...(summary ? [resultEvent(summary)] : []), ...artifacts.map(artifactEvent), runEndedEvent(status, reason, summary)];
}
