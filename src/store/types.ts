/**
 * What the run store holds on disk, typed once for the writer and every reader.
 * Statuses are ours and lowercase; the MLflow sink maps them to MLflow's.
 */
import type { BackendInfo } from '../backend/types.js';
import type { RunEnvironment } from './environment.js';

/**
 * planned: written, never trained. running: a process trains it (or died without saying so).
 * completed: trained to the end (or early-stopped). failed: stopped by an error.
 * killed: stopped on request (Ctrl-C, SIGTERM) or by a signal. pruned: stopped by the sweep's
 * early-termination rule because it was clearly worse than its peers.
 */
export type RunStatus = 'planned' | 'running' | 'completed' | 'failed' | 'killed' | 'pruned';

/** Statuses after which a run does not train again unless asked (`--retry-failed`, `--force`). */
export const ENDED_STATUSES: readonly RunStatus[] = ['completed', 'failed', 'killed', 'pruned'];

/** Whether a run ended with a result to keep: trained to the end (or early-stopped), or pruned by its sweep's scheduler. */
export const isFinished = (s: RunStatus | undefined): s is 'completed' | 'pruned' => s === 'completed' || s === 'pruned';

/** Statuses a plain `exp run` of the same file continues: never started, or interrupted. */
export const isResumable = (s: RunStatus | undefined): boolean => s === undefined || s === 'planned' || s === 'running' || s === 'killed';

export type Metrics = Record<string, number>;

/** thresholds.json: per-tag thresholds tuned on the validation split after training. */
export interface ThresholdsFile {
  version: 1;
  tags: string[];
  thresholds: number[];
  beta: number;
  /** Whether they were tuned on test-time-augmented probabilities (evaluation.tta). */
  tta: boolean;
  /** F-beta on the validation split at metrics.threshold, and with the tuned thresholds. */
  fbeta_at_threshold: number;
  fbeta_tuned: number;
  /** Tuned on one half of the split and scored on the other: the figure to believe. */
  held_out: { at_threshold: number; tuned: number };
}

/** How a training process ended, as its parent saw it. */
export interface ProcessExit {
  code: number | null;
  signal: string | null;
}

/** run.json: the run's status and where and how it ran. */
export interface RunRecord {
  key: string;
  /** The folder's identity (from point.json): two folders of one key are two runs. */
  uid?: string;
  name: string;
  status: RunStatus;
  reason?: string;
  created: string;
  started?: string;
  ended?: string;
  attempts: number;
  /** The training process of the last attempt. */
  pid?: number;
  host?: string;
  backend?: BackendInfo;
  /** GPUs this run was given (CUDA_VISIBLE_DEVICES), when a launcher assigned them. */
  gpus?: string;
  /** Which launcher ran it last: exp run (local), a queue worker, or a Slurm array task (worker: its job, task and node). */
  launcher?: { kind: 'local' | 'queue' | 'slurm'; worker?: string };
  environment?: RunEnvironment;
  exit?: ProcessExit;
  /** The user's own labels (`exp tag RUN key=value`), also sent to MLflow as tags. */
  tags?: Record<string, string>;
  /** The shared feature cache, when the run used it (its last attempt's numbers). */
  feature_cache?: FeatureCacheRecord;
}

/** How a run used the shared feature cache (train/features.ts). */
export interface FeatureCacheRecord {
  key: string;
  dir: string;
  /** Whether training batches came from the cache (false with a continuous rotation: validation only). */
  trained_from_cache: boolean;
  validation_from_cache: boolean;
  /** Features this run computed itself (stored or not), read from the cache, stored, and found damaged. */
  computed: number;
  read: number;
  stored: number;
  damaged: number;
  /** Seconds spent computing, storing and waiting for entries, apart from training. */
  fill_seconds: number;
}

/** point.json: a run folder's identity and its place in the sweep, written with the folder. */
export interface PointMeta {
  version: 1;
  /** Random, made once with the folder: MLflow runs are matched by it. */
  uid: string;
  /** Hash of the resolved config (see sweep/key.ts). */
  key: string;
  /** The readable name built from the swept values. */
  name: string;
  /** 0-based position in the sweep. */
  index: number;
  /** The swept values of this point, by dotted path. */
  params: Record<string, unknown>;
  experiment: string;
  sweep: string;
  /** The sweep folder's identity: the MLflow parent run is matched by it. */
  sweep_uid: string;
  created: string;
}

/** One point in index.json. */
export interface SweepIndexEntry {
  index: number;
  key: string;
  name: string;
  params: Record<string, unknown>;
  /** Folder name under the sweep folder. */
  dir: string;
}

/** index.json: the sweep's points. */
export interface SweepIndex {
  experiment: string;
  sweep: string;
  /** The sweep folder's identity (see PointMeta.sweep_uid). */
  uid: string;
  /** The experiment file it was planned from. */
  file: string;
  created: string;
  points: SweepIndexEntry[];
}

export interface BestEpoch {
  epoch: number;
  metrics: Metrics;
}

/** summary.json: what a run achieved, written when it ends. */
export interface RunSummary {
  status: RunStatus;
  reason: string;
  key: string;
  name: string;
  backend: string;
  device: string;
  epochs_completed: number;
  epochs_planned: number;
  /** The metric that picks the best epoch (checkpoint.monitor) and its direction. */
  monitor: string;
  mode: 'min' | 'max';
  best: BestEpoch | null;
  /** The best checkpoint evaluated again at the end (the recipe's final step). */
  final: Metrics | null;
  /** The best constant predictor: always the k most frequent tags. */
  baseline: { constant_top_k: number; val_fbeta: number };
  duration_s: number;
  images_per_second: { train: number | null; eval: number | null };
  /** Peak resident memory of the training process. */
  peak_rss_mb?: number;
  tensors: { at_start: number; after_each_epoch: number[] };
  params: { total: number; trainable: number };
  split: { train: number; val: number; hash: string };
  tags: string[];
  /** Time spent filling the shared feature cache (apart from training), and what the run computed and read. */
  feature_cache?: { fill_seconds: number; computed: number; read: number; trained_from_cache: boolean };
}

/** A metrics.jsonl line: one epoch. */
export type EpochLine = Metrics & { epoch: number; lr?: number; seconds?: number };
