/**
 * Exact F-beta, as Kaggle scored Planet: F-beta per image from its own TP/FP/FN, then the
 * mean over every image of the split (not a mean of batch means, which is what Keras
 * reported). Plus per-tag precision/recall/F-beta and their micro and macro averages.
 * Pure functions over plain arrays, so they are tested against hand-computed cases.
 */

export interface FbetaCounts {
  /** Sum over images of each image's F-beta, and the image count. */
  sampleSum: number;
  images: number;
  /** Per tag: true positives, false positives, false negatives. */
  tp: Float64Array;
  fp: Float64Array;
  fn: Float64Array;
}

export function emptyCounts(nTags: number): FbetaCounts {
  return { sampleSum: 0, images: 0, tp: new Float64Array(nTags), fp: new Float64Array(nTags), fn: new Float64Array(nTags) };
}

/** F-beta from counts. An image with no true and no predicted tags scores 1 (nothing to find, nothing wrong). */
export function fbetaOf(tp: number, fp: number, fn: number, beta: number): number {
  if (tp + fp + fn === 0) return 1;
  const b2 = beta * beta;
  return ((1 + b2) * tp) / ((1 + b2) * tp + b2 * fn + fp);
}

/**
 * Adds a batch to the counts. probs and targets are [n, nTags] row-major; a tag is predicted
 * when its probability is above `threshold` (one for all tags, or one per tag).
 */
export function accumulate(
  c: FbetaCounts,
  probs: ArrayLike<number>,
  targets: ArrayLike<number>,
  nTags: number,
  beta: number,
  threshold: number | readonly number[],
): void {
  const n = probs.length / nTags;
  const th = typeof threshold === 'number' ? Array.from({ length: nTags }, () => threshold) : threshold;
  for (let i = 0; i < n; i++) {
    let tp = 0,
      fp = 0,
      fn = 0;
    for (let t = 0; t < nTags; t++) {
      const pred = probs[i * nTags + t]! > th[t]!;
      const truth = targets[i * nTags + t]! > 0.5;
      if (pred && truth) {
        tp++;
        c.tp[t]!++;
      } else if (pred) {
        fp++;
        c.fp[t]!++;
      } else if (truth) {
        fn++;
        c.fn[t]!++;
      }
    }
    c.sampleSum += fbetaOf(tp, fp, fn, beta);
    c.images++;
  }
}

export interface TagScore {
  precision: number;
  recall: number;
  fbeta: number;
  support: number;
}

export interface FbetaReport {
  /** Sample-averaged F-beta over the whole split (the competition metric). */
  fbeta: number;
  micro: TagScore;
  macro: TagScore;
  perTag: Record<string, TagScore>;
}

const ratio = (a: number, b: number): number => (b === 0 ? 0 : a / b);

export function report(c: FbetaCounts, tags: readonly string[], beta: number): FbetaReport {
  const perTag: Record<string, TagScore> = {};
  let sp = 0,
    sr = 0,
    sf = 0;
  tags.forEach((tag, t) => {
    const tp = c.tp[t]!,
      fp = c.fp[t]!,
      fn = c.fn[t]!;
    const s = { precision: ratio(tp, tp + fp), recall: ratio(tp, tp + fn), fbeta: tp + fp + fn === 0 ? 0 : fbetaOf(tp, fp, fn, beta), support: tp + fn };
    perTag[tag] = s;
    sp += s.precision;
    sr += s.recall;
    sf += s.fbeta;
  });
  const TP = c.tp.reduce((a, b) => a + b, 0),
    FP = c.fp.reduce((a, b) => a + b, 0),
    FN = c.fn.reduce((a, b) => a + b, 0);
  const n = tags.length || 1;
  return {
    fbeta: ratio(c.sampleSum, c.images),
    micro: { precision: ratio(TP, TP + FP), recall: ratio(TP, TP + FN), fbeta: fbetaOf(TP, FP, FN, beta), support: TP + FN },
    macro: { precision: sp / n, recall: sr / n, fbeta: sf / n, support: TP + FN },
    perTag,
  };
}

/** Convenience: the sample-averaged F-beta of whole arrays. */
export function sampleFbeta(probs: ArrayLike<number>, targets: ArrayLike<number>, nTags: number, beta: number, threshold = 0.5): number {
  const c = emptyCounts(nTags);
  accumulate(c, probs, targets, nTags, beta, threshold);
  return ratio(c.sampleSum, c.images);
}

/**
 * The best constant predictor: always predict the k most frequent tags (of the training
 * targets), with the k that scores best on `targets`. A model that ignores its input can
 * reach this, so a model must beat it to show it learned anything.
 */
export function bestConstantBaseline(
  trainTargets: ArrayLike<number>,
  targets: ArrayLike<number>,
  nTags: number,
  beta: number,
): { k: number; fbeta: number; tags: number[] } {
  const freq = new Float64Array(nTags);
  for (let i = 0; i < trainTargets.length; i++) freq[i % nTags]! += trainTargets[i]!;
  const order = [...freq.keys()].sort((a, b) => freq[b]! - freq[a]!);
  const n = targets.length / nTags;
  let best = { k: 0, fbeta: -1, tags: [] as number[] };
  for (let k = 1; k <= nTags; k++) {
    const chosen = new Set(order.slice(0, k));
    const probs = new Float32Array(n * nTags);
    for (let i = 0; i < n; i++) for (const t of chosen) probs[i * nTags + t] = 1;
    const f = sampleFbeta(probs, targets, nTags, beta);
    if (f > best.fbeta) best = { k, fbeta: f, tags: [...chosen] };
  }
  return best;
}
