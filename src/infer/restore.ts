/**
 * A trained run's model, ready to use: its config, tag vocabulary and thresholds from the
 * run folder, the model rebuilt (base weights from where the run took them) and its best
 * checkpoint (or its last, for a run that never saved a best) loaded on top. A damaged file is a
 * coded error naming it, never a silent fallback to something else.
 */
import type * as tf from '@tensorflow/tfjs';
import { existsSync, readdirSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import type { RunConfig } from '../config/normalise.js';
import { ExpError, ModelUseError } from '../errors.js';
import { WeightsError } from '../model/errors.js';
import { selectBackend } from '../backend/select.js';
import type { BackendInfo, BackendName } from '../backend/types.js';
import { checkpointDir } from '../store/layout.js';
import { readTags } from '../store/tags.js';
import { readThresholds } from '../store/thresholds.js';
import { readPoint, readRunConfig } from '../store/run.js';
import type { PointMeta } from '../store/types.js';
import { hasCheckpoint, loadCheckpoint, readCheckpointInfo, type BaseRef } from '../core/checkpoint.js';
import { buildWithBase } from '../core/model.js';
import type { ExportMetadata } from './metadata.js';

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

/** Which checkpoint to use: best (the default: the run's last when it never saved a best) or last. */
export type CheckpointChoice = 'best' | 'last';

/** The run's tag vocabulary (tags.txt, written by training), or NO_MODEL when it has not trained yet; a damaged one is RUN_FILE_CORRUPT (store/tags.ts). */
export function readRunTags(dir: string): string[] {
  const tags = readTags(dir);
  if (tags === undefined)
    throw new ModelUseError({ code: 'NO_MODEL', message: `${dir} has no tags.txt: it has not trained yet`, fix: `train it first: exp train ${dir}` });
  return tags;
}

/**
 * Whether a swap of `target` stopped between its two renames (see replaceDirAtomic): its old
 * folder is there and it is not. A temp folder alone is a save that never started its swap.
 */
function swapLeftover(target: string): boolean {
  const name = basename(target);
  try {
    return readdirSync(dirname(target)).some((e) => e.startsWith(`${name}.old-`));
  } catch {
    return false;
  }
}

/** The checkpoint folder to load: the one asked for, else best when the run has one, else last. */
function chooseCheckpoint(dir: string, want: CheckpointChoice | undefined): CheckpointChoice {
  // The best folder is swapped in whole (replaceDirAtomic), so one that is there but unreadable is damaged, not half-written.
  const which = want ?? (existsSync(checkpointDir(dir, 'best')) ? 'best' : 'last');
  if (which === 'last' && want === undefined && swapLeftover(checkpointDir(dir, 'best'))) {
    const file = checkpointDir(dir, 'best');
    throw new WeightsError({
      code: 'CHECKPOINT_CORRUPT',
      file,
      message: `the best checkpoint of ${dir} is missing: a save of it stopped between its two renames (or is under way now)`,
      fix: 'when no training is under way, move checkpoints/best.tmp-* (the new, complete one) or checkpoints/best.old-* (the previous one) to checkpoints/best; or use --checkpoint last',
    });
  }
  if (existsSync(checkpointDir(dir, which))) return which;
  if (want)
    throw new ModelUseError({
      code: 'NO_MODEL',
      message: `${dir} has no checkpoints/${want}`,
      fix: `leave out --checkpoint ${want} to use the checkpoint the run has`,
    });
  throw new ModelUseError({
    code: 'NO_MODEL',
    message: `${dir} has no checkpoint (checkpoints/best or last)`,
    fix: `train it first (exp train ${dir}), or use a run that saved one (checkpoint.save_best)`,
  });
}

/** Loads checkpoint `which` into `model`; a damaged one is CHECKPOINT_CORRUPT naming the file, never replaced by another in silence. */
async function loadChosen(dir: string, which: CheckpointChoice, model: tf.LayersModel, base: BaseRef): Promise<void> {
  const cdir = checkpointDir(dir, which);
  try {
    if (!hasCheckpoint(cdir)) readCheckpointInfo(cdir); // names state.json when that is what is wrong
    await loadCheckpoint(cdir, model, undefined, base);
  } catch (e) {
    if (!(e instanceof ExpError) || e.code === 'CHECKPOINT_MISMATCH') throw e;
    const file = e.file ?? join(cdir, 'weights.json');
    throw new WeightsError({
      code: 'CHECKPOINT_CORRUPT',
      file,
      message: `the ${which} checkpoint of ${dir} is damaged: ${e.message.split('\n')[0]!}`,
      fix:
        which === 'best'
          ? 'use the last checkpoint instead (--checkpoint last), or train the run again (exp run FILE --force)'
          : 'train the run again (exp run FILE --force)',
      cause: e,
    });
  }
}

/**
 * Loads the run's model on `backend` (default: the best available here). `tuned: false` does
 * not read thresholds.json (the caller sets its own thresholds, e.g. --thresholds 0.5).
 */
export async function restoreRun(
  dir: string,
  opts: { backend?: 'auto' | BackendName; checkpoint?: CheckpointChoice; tuned?: boolean } = {},
): Promise<RestoredRun> {
  const cfg = readRunConfig(dir);
  const point = readPoint(dir);
  const tags = readRunTags(dir);
  const which = chooseCheckpoint(dir, opts.checkpoint);
  const tuned = opts.tuned === false ? undefined : readThresholds(dir, tags);
  const backend = await selectBackend(opts.backend ?? 'auto');
  const { model, base } = await buildWithBase(cfg, tags.length);
  try {
    await loadChosen(dir, which, model, base);
  } catch (e) {
    model.dispose(); // a long-lived caller (the MLflow sink) must not keep a VGG16 per failed try
    throw e;
  }
  return {
    dir,
    cfg,
    point,
    tags,
    model,
    backend,
    checkpoint: which,
    thresholds: tuned ? tuned.thresholds : tags.map(() => cfg.metrics.threshold),
    thresholdsFrom: tuned ? 'tuned' : 'config',
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
