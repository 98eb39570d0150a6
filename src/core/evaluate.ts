/**
 * A model scored on images of a dataset, without augmentation: the one prediction loop
 * (core/predict) in the run's evaluation batches, then the loss (core/loss) and the exact
 * F-beta at metrics.threshold (core/metrics). Training validates every epoch with it and
 * scores the reloaded best checkpoint with it at the end.
 */
import type * as tf from '@tensorflow/tfjs';
import type { RunConfig } from '../config/normalise.js';
import type { Dataset } from '../data/planet.js';
import { targetsOf } from './batches.js';
import { meanBce } from './loss.js';
import { accumulate, emptyCounts, report, type FbetaReport } from './metrics.js';
import { evalBatchSize, predictProbs } from './predict.js';

export interface Evaluation {
  loss: number;
  fbeta: FbetaReport;
  /** [indices.length, nTags] row-major, and the targets in the same layout. */
  probs: Float32Array;
  targets: Uint8Array;
}

/** Loss and exact F-beta of `model` over images `indices` of `ds`. */
export async function evaluate(model: tf.LayersModel, ds: Dataset, indices: readonly number[], cfg: RunConfig): Promise<Evaluation> {
  const batchSize = evalBatchSize(cfg);
  const nTags = ds.tags.length;
  const probs = await predictProbs(model, ds.pixels, ds.size, indices, { preprocessing: cfg.model.preprocessing, batchSize, tta: false });
  const targets = targetsOf(ds, indices);
  const counts = emptyCounts(nTags);
  accumulate(counts, probs, targets, nTags, cfg.metrics.beta, cfg.metrics.threshold);
  return { loss: meanBce(probs, targets, nTags, batchSize), fbeta: report(counts, ds.tags, cfg.metrics.beta), probs, targets };
}
