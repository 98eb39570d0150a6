/**
 * The model of a run: VGG16 and its head built from the run config, with the base weights
 * the config names loaded, and a BaseRef that checkpoints record (they hold only what
 * trains, so loading one rebuilds the rest from here first).
 */
import type * as tf from '@tensorflow/tfjs';
import type { RunConfig } from '../config/normalise.js';
import { buildModel, countParams, type ParamCounts } from '../model/vgg16.js';
import { fileMd5, resolveWeights } from '../model/weights.js';
import { loadWeights } from '../model/keras-h5.js';
import { SeededDropout } from '../model/dropout.js';
import type { BaseRef } from './checkpoint.js';

export interface RunModel {
  model: tf.LayersModel;
  base: BaseRef;
  counts: ParamCounts;
  /** What was loaded into the base, for the run's log; empty for random init. */
  loaded: string;
}

/** Builds the run's model (seeded init) and loads its base weights (checked: size and MD5 for ImageNet). */
export async function buildWithBase(cfg: RunConfig, nTags: number): Promise<RunModel> {
  const seed = cfg.training.seed;
  const model = buildModel({ imageSize: cfg.data.image_size, nTags, trainableBlocks: cfg.model.trainable_blocks, head: cfg.model.head, seed });
  const counts = countParams(model);
  if (cfg.model.weights === 'none') return { model, base: { weights: 'none', seed }, counts, loaded: '' };
  try {
    const source = await resolveWeights(cfg.model.weights);
    if (source.kind === 'none') return { model, base: { weights: 'none', seed }, counts, loaded: '' };
    const report = await loadWeights(model, source);
    return {
      model,
      base: { weights: 'file', path: source.path, md5: await fileMd5(source.path), seed },
      counts,
      loaded: `${report.loaded.length} layers from ${source.path}`,
    };
  } catch (e) {
    model.dispose();
    throw e;
  }
}

const dropouts = (model: tf.LayersModel): SeededDropout[] => model.layers.filter((l): l is SeededDropout => l instanceof SeededDropout);

/** Training calls of the model's seeded dropout so far (saved in checkpoints). */
export const dropoutStep = (model: tf.LayersModel): number => dropouts(model)[0]?.step ?? 0;

/** Restores the dropout's call count, so a resumed run draws the masks it would have drawn. */
export function setDropoutStep(model: tf.LayersModel, step: number): void {
  for (const d of dropouts(model)) d.step = step;
}
