/**
 * A trained run's model, ready to use: its config, tag vocabulary and thresholds from the
 * run folder, the model rebuilt (base weights from where the run took them) and its best
 * checkpoint (or its last, for a run that never improved) loaded on top.
 */
import type * as tf from '@tensorflow/tfjs';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import type { RunConfig } from '../config/normalise.js';
import { ModelUseError } from '../errors.js';
import { selectBackend } from '../backend/select.js';
import type { BackendInfo, BackendName } from '../backend/types.js';
import { checkpointDir, runPath } from '../store/layout.js';
import { readPoint, readRunConfig } from '../store/run.js';
import type { PointMeta } from '../store/types.js';
import { readFileBounded, readJson } from '../util/fsx.js';
import { hasCheckpoint, loadCheckpoint } from '../train/checkpoint.js';
import { buildWithBase } from '../train/model.js';
import type { ExportMetadata } from './metadata.js';

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

export interface RestoredRun {
  dir: string;
  cfg: RunConfig;
  point: PointMeta;
  tags: string[];
  /** Tuned thresholds when the run has them, else metrics.threshold for every tag. */
  thresholds: number[];
  thresholdsFrom: 'tuned' | 'config';
  model: tf.LayersModel;
  backend: BackendInfo;
  checkpoint: 'best' | 'last';
}

export const readThresholds = (dir: string): ThresholdsFile | undefined => readJson<ThresholdsFile>(runPath(dir, 'thresholds'));

/** The run's tag vocabulary (tags.txt, written by training), or a NO_MODEL error. */
export function readTags(dir: string): string[] {
  const file = runPath(dir, 'tags');
  // tags.txt is a few hundred bytes; a bigger one is not ours.
  if (!existsSync(file)) throw new ModelUseError('NO_MODEL', `${dir} has no tags.txt: it has not trained yet`, `train it first: exp train ${dir}`);
  return readFileBounded(file, 1 << 20, 'tags.txt')
    .toString('utf8')
    .split('\n')
    .map((t) => t.trim())
    .filter(Boolean);
}

/** Loads the run's model on `backend` (default: the best available here). */
export async function restoreRun(dir: string, opts: { backend?: 'auto' | BackendName } = {}): Promise<RestoredRun> {
  const cfg = readRunConfig(dir);
  const point = readPoint(dir);
  const tags = readTags(dir);
  const which = hasCheckpoint(checkpointDir(dir, 'best')) ? 'best' : hasCheckpoint(checkpointDir(dir, 'last')) ? 'last' : undefined;
  if (!which)
    throw new ModelUseError(
      'NO_MODEL',
      `${dir} has no checkpoint (checkpoints/best or last)`,
      `train it first (exp train ${dir}), or use a run that saved one (checkpoint.save_best)`,
    );
  const backend = await selectBackend(opts.backend ?? 'auto');
  const { model, base } = await buildWithBase(cfg, tags.length);
  try {
    await loadCheckpoint(checkpointDir(dir, which), model, undefined, base);
  } catch (e) {
    model.dispose(); // a long-lived caller (the MLflow sink) must not keep a VGG16 per failed try
    throw e;
  }
  const tuned = readThresholds(dir);
  const usable = tuned && tuned.tags.length === tags.length && tuned.tags.every((t, i) => t === tags[i]);
  return {
    dir,
    cfg,
    point,
    tags,
    model,
    backend,
    checkpoint: which,
    thresholds: usable ? tuned.thresholds : tags.map(() => cfg.metrics.threshold),
    thresholdsFrom: usable ? 'tuned' : 'config',
  };
}

/** What an export of this run carries about it. */
export function exportMetadata(r: Pick<RestoredRun, 'cfg' | 'point' | 'tags' | 'thresholds' | 'thresholdsFrom' | 'dir'>): ExportMetadata {
  return {
    format: 'exp-model',
    version: 1,
    tags: r.tags,
    thresholds: r.thresholds,
    thresholds_from: r.thresholdsFrom,
    image_size: r.cfg.data.image_size,
    resize: r.cfg.data.resize,
    preprocessing: r.cfg.model.preprocessing,
    beta: r.cfg.metrics.beta,
    run: { key: r.point.key, uid: r.point.uid, name: join(r.dir).split('/').at(-1)!, experiment: r.point.experiment },
  };
}
