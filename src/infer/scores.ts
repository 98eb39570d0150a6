/**
 * Everything `exp evaluate` reports for a set of predictions: binary cross-entropy (as
 * training computes it), the exact sample-averaged F-beta at the chosen thresholds, per tag
 * precision, recall, F-beta and the confusion counts, and the micro and macro averages.
 */
import { accumulate, emptyCounts, report, type FbetaReport } from '../core/metrics.js';

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

/** probs and targets are [n, tags.length] row-major. */
export function scorePredictions(
  probs: ArrayLike<number>,
  targets: ArrayLike<number>,
  tags: readonly string[],
  beta: number,
  thresholds: readonly number[],
): Scores {
  const nTags = tags.length;
  const n = probs.length / nTags;
  const c = emptyCounts(nTags);
  accumulate(c, probs, targets, nTags, beta, thresholds);
  let ll = 0;
  for (let i = 0; i < probs.length; i++) {
    // Keras's binary cross-entropy on probabilities: clipped at 1e-7 (as training reports it).
    const p = Math.min(Math.max(probs[i]!, 1e-7), 1 - 1e-7);
    ll += targets[i]! > 0.5 ? Math.log(p) : Math.log(1 - p);
  }
  const confusion: Record<string, TagCounts> = {};
  tags.forEach((tag, t) => {
    confusion[tag] = { tp: c.tp[t]!, fp: c.fp[t]!, fn: c.fn[t]!, tn: n - c.tp[t]! - c.fp[t]! - c.fn[t]! };
  });
  return {
    ...report(c, tags, beta),
    loss: n > 0 ? -ll / (n * nTags) : 0,
    images: n,
    thresholds: Object.fromEntries(tags.map((t, i) => [t, thresholds[i]!])),
    confusion,
  };
}
