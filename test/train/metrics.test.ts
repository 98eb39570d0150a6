// F-beta against hand-computed cases.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { accumulate, bestConstantBaseline, emptyCounts, fbetaOf, report, sampleFbeta } from '../../src/core/metrics.js';

const close = (a: number, b: number, eps = 1e-9): void => assert.ok(Math.abs(a - b) < eps, `${a} vs ${b}`);

test('per-image F2 is 5pr/(4p+r)', () => {
  // tp=1, fp=1, fn=1: p=0.5, r=0.5 -> F2 = 5*0.25/(2+0.5) = 0.5
  close(fbetaOf(1, 1, 1, 2), 0.5);
  // tp=2, fp=0, fn=1: p=1, r=2/3 -> F2 = 5*(2/3)/(4+2/3) = 0.714285...
  close(fbetaOf(2, 0, 1, 2), (5 * (2 / 3)) / (4 + 2 / 3));
  close(fbetaOf(0, 3, 2, 2), 0);
  close(fbetaOf(0, 0, 0, 2), 1);
  // beta=1 is the harmonic mean.
  close(fbetaOf(1, 1, 0, 1), 2 / 3);
});

test('sample-averaged over images, not over batches', () => {
  // 3 tags, 3 images.
  const targets = [1, 0, 1, /**/ 0, 1, 0, /**/ 1, 1, 1];
  const probs = [0.9, 0.6, 0.1, /**/ 0.2, 0.8, 0.3, /**/ 0.7, 0.1, 0.9];
  // image 1: tp=1 fp=1 fn=1 -> 0.5; image 2: tp=1 -> 1; image 3: tp=2 fn=1 -> 0.714285
  const expected = (0.5 + 1 + (5 * (2 / 3)) / (4 + 2 / 3)) / 3;
  close(sampleFbeta(probs, targets, 3, 2), expected);
  // Accumulating in uneven batches gives the same number; a mean of batch means would not.
  const c = emptyCounts(3);
  accumulate(c, probs.slice(0, 3), targets.slice(0, 3), 3, 2, 0.5);
  accumulate(c, probs.slice(3), targets.slice(3), 3, 2, 0.5);
  close(report(c, ['a', 'b', 'c'], 2).fbeta, expected);
  const batchMeans = (0.5 + (1 + (5 * (2 / 3)) / (4 + 2 / 3)) / 2) / 2;
  assert.ok(Math.abs(batchMeans - expected) > 0.01);
});

test('per-tag, micro and macro scores', () => {
  const targets = [1, 0, 1, 0, 1, 0, 1, 1, 1];
  const probs = [0.9, 0.6, 0.1, 0.2, 0.8, 0.3, 0.7, 0.1, 0.9];
  const c = emptyCounts(3);
  accumulate(c, probs, targets, 3, 2, 0.5);
  const r = report(c, ['a', 'b', 'c'], 2);
  // tag a: tp=2; tag b: tp=1 fp=1 fn=1; tag c: tp=1 fn=1
  assert.deepEqual(r.perTag.a, { precision: 1, recall: 1, fbeta: 1, support: 2 });
  close(r.perTag.b!.precision, 0.5);
  close(r.perTag.b!.recall, 0.5);
  close(r.perTag.c!.recall, 0.5);
  close(r.perTag.c!.precision, 1);
  // micro: TP=4, FP=1, FN=2
  close(r.micro.precision, 4 / 5);
  close(r.micro.recall, 4 / 6);
  close(r.micro.fbeta, fbetaOf(4, 1, 2, 2));
  close(r.macro.precision, (1 + 0.5 + 1) / 3);
  // A higher threshold predicts less.
  close(sampleFbeta(probs, targets, 3, 2, 0.85), (fbetaOf(1, 0, 1, 2) + fbetaOf(0, 0, 1, 2) + fbetaOf(1, 0, 2, 2)) / 3);
});

test('the best constant predictor picks the k most frequent tags', () => {
  // tag 0 always, tag 1 half the time, tag 2 never.
  const train = [1, 1, 0, 1, 0, 0, 1, 1, 0, 1, 0, 0];
  const b = bestConstantBaseline(train, train, 3, 2);
  // k=1: each image F2 for tp=1,fn=0/1: (1 + 5/9... ) ; k=2: recall 1 everywhere, p=1 or 0.5
  const k1 = (fbetaOf(1, 0, 1, 2) * 2 + 1 * 2) / 4;
  const k2 = (1 * 2 + fbetaOf(1, 1, 0, 2) * 2) / 4;
  assert.equal(b.k, k2 > k1 ? 2 : 1);
  close(b.fbeta, Math.max(k1, k2));
  assert.deepEqual(b.tags.slice(0, 1), [0]);
});
