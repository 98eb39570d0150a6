/**
 * Per-tag decision thresholds tuned on validation predictions to maximise the sample-averaged
 * F-beta (Kaggle's metric): coordinate ascent over the tags, a few rounds, each tag's
 * threshold searched on a grid with the others fixed. Pure functions over typed arrays.
 *
 * A tag's threshold changes only that tag's prediction, so an image's F-beta is recomputed
 * from its counts without the tag plus the tag's own contribution: O(images) per candidate.
 * Tuned thresholds overfit the set they were tuned on; heldOutEstimate tunes on one half and
 * scores the other, for an honest figure.
 */
import { accumulate, emptyCounts, fbetaOf } from './metrics.js';

/** thresholds.json's record: defined with the run store, which reads and writes it. */
export type { ThresholdsFile } from '../store/types.js';

/** probs and targets are [n, nTags] row-major. */
export interface Predictions {
  probs: ArrayLike<number>;
  targets: ArrayLike<number>;
  nTags: number;
}

/** Sample-averaged F-beta with a threshold per tag (a tag is predicted when its probability is above it). */
export function fbetaAt(p: Predictions, beta: number, thresholds: readonly number[]): number {
  const c = emptyCounts(p.nTags);
  accumulate(c, p.probs, p.targets, p.nTags, beta, thresholds);
  return c.images > 0 ? c.sampleSum / c.images : 0;
}

/** The candidate thresholds: 0.02 to 0.98 in steps of 0.01. */
export const GRID: readonly number[] = Array.from({ length: 97 }, (_, i) => Math.round((0.02 + i * 0.01) * 100) / 100);

export interface Tuned {
  thresholds: number[];
  fbeta: number;
  rounds: number;
}

/** Coordinate ascent from `start` (default 0.5 for every tag); stops when a round gains nothing. */
export function tuneThresholds(p: Predictions, beta: number, opts: { rounds?: number; grid?: readonly number[]; start?: readonly number[] } = {}): Tuned {
  const { nTags } = p;
  const n = p.probs.length / nTags;
  const grid = opts.grid ?? GRID;
  const th = [...(opts.start ?? Array.from({ length: nTags }, () => 0.5))];
  // Per image counts with every tag's current threshold.
  const tp = new Int32Array(n),
    fp = new Int32Array(n),
    fn = new Int32Array(n);
  for (let i = 0; i < n; i++) {
    for (let t = 0; t < nTags; t++) {
      const pred = p.probs[i * nTags + t]! > th[t]!;
      const truth = p.targets[i * nTags + t]! > 0.5;
      if (pred && truth) tp[i]!++;
      else if (pred) fp[i]!++;
      else if (truth) fn[i]!++;
    }
  }
  let best = fbetaAt(p, beta, th);
  let rounds = 0;
  for (let r = 0; r < (opts.rounds ?? 3); r++) {
    rounds++;
    const before = best;
    for (let t = 0; t < nTags; t++) {
      // Take tag t out of every image's counts, then try each candidate for it.
      for (let i = 0; i < n; i++) {
        const pred = p.probs[i * nTags + t]! > th[t]!;
        const truth = p.targets[i * nTags + t]! > 0.5;
        if (pred && truth) tp[i]!--;
        else if (pred) fp[i]!--;
        else if (truth) fn[i]!--;
      }
      let bestT = th[t]!;
      let bestScore = -1;
      for (const c of grid) {
        let sum = 0;
        for (let i = 0; i < n; i++) {
          const pred = p.probs[i * nTags + t]! > c;
          const truth = p.targets[i * nTags + t]! > 0.5;
          sum += fbetaOf(tp[i]! + (pred && truth ? 1 : 0), fp[i]! + (pred && !truth ? 1 : 0), fn[i]! + (!pred && truth ? 1 : 0), beta);
        }
        // Ties keep the candidate closest to 0.5: no move without a gain.
        if (sum > bestScore + 1e-12 || (Math.abs(sum - bestScore) <= 1e-12 && Math.abs(c - 0.5) < Math.abs(bestT - 0.5))) {
          bestScore = sum;
          bestT = c;
        }
      }
      th[t] = bestT;
      for (let i = 0; i < n; i++) {
        const pred = p.probs[i * nTags + t]! > bestT;
        const truth = p.targets[i * nTags + t]! > 0.5;
        if (pred && truth) tp[i]!++;
        else if (pred) fp[i]!++;
        else if (truth) fn[i]!++;
      }
      best = n > 0 ? bestScore / n : 0;
    }
    if (best <= before + 1e-12) break;
  }
  return { thresholds: th, fbeta: best, rounds };
}

function pick(p: Predictions, rows: readonly number[]): Predictions {
  const probs = new Float32Array(rows.length * p.nTags);
  const targets = new Float32Array(rows.length * p.nTags);
  rows.forEach((r, i) => {
    for (let t = 0; t < p.nTags; t++) {
      probs[i * p.nTags + t] = p.probs[r * p.nTags + t]!;
      targets[i * p.nTags + t] = p.targets[r * p.nTags + t]!;
    }
  });
  return { probs, targets, nTags: p.nTags };
}

/**
 * An honest score for tuned thresholds: tune on the even images and score the odd ones, and
 * the other way round; the mean of the two, beside the same halves at 0.5.
 */
export function heldOutEstimate(p: Predictions, beta: number, base = 0.5): { at_base: number; tuned: number } {
  const n = p.probs.length / p.nTags;
  const even = Array.from({ length: Math.ceil(n / 2) }, (_, i) => 2 * i);
  const odd = Array.from({ length: Math.floor(n / 2) }, (_, i) => 2 * i + 1);
  const flat = Array.from({ length: p.nTags }, () => base);
  let tuned = 0,
    atBase = 0;
  for (const [fit, score] of [
    [even, odd],
    [odd, even],
  ] as const) {
    const s = pick(p, score);
    tuned += fbetaAt(s, beta, tuneThresholds(pick(p, fit), beta).thresholds);
    atBase += fbetaAt(s, beta, flat);
  }
  return { at_base: atBase / 2, tuned: tuned / 2 };
}
