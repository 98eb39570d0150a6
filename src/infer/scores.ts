/**
 * Everything `exp evaluate` reports for a set of predictions: binary cross-entropy (core/loss,
 * the loss training reports, in the same batches), the exact sample-averaged F-beta at the chosen thresholds, per tag
 * precision, recall, F-beta and the confusion counts, and the micro and macro averages.
 */
import { accumulate, emptyCounts, report, type FbetaReport } from '../core/metrics.js';
import { meanBce } from '../core/loss.js';

export interface TagCounts {
  tp: number;
  fp: number;
  fn: number;
  tn: number;
}

export interface Scores extends FbetaReport {
  loss: number;
  images: number;
  thresholds: Record<string, number>;
  confusion: Record<string, TagCounts>;
}

/** probs and targets are [n, tags.length] row-major; `batchSize` is the run's evaluation batch size (core/predict: evalBatchSize). */
export function scorePredictions(
  probs: ArrayLike<number>,
  targets: ArrayLike<number>,
  tags: readonly string[],
  beta: number,
  thresholds: readonly number[],
  batchSize = 32,
): Scores {
  const nTags = tags.length;
  const n = probs.length / nTags;
  const c = emptyCounts(nTags);
  accumulate(c, probs, targets, nTags, beta, thresholds);
  const confusion: Record<string, TagCounts> = {};
  tags.forEach((tag, t) => {
    confusion[tag] = { tp: c.tp[t]!, fp: c.fp[t]!, fn: c.fn[t]!, tn: n - c.tp[t]! - c.fp[t]! - c.fn[t]! };
  });
  return {
    ...report(c, tags, beta),
    loss: meanBce(probs, targets, nTags, batchSize),
    images: n,
    thresholds: Object.fromEntries(tags.map((t, i) => [t, thresholds[i]!])),
    confusion,
  };
}
