/**
 * The pure pieces of using a model: the threshold search on probabilities with a known
 * optimum, the 8 dihedral views on an image whose transforms are known, the submission lines,
 * the image list (natural order; a CSV's order), and the averaged model of an ensemble.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { fbetaAt, heldOutEstimate, tuneThresholds } from '../../src/core/thresholds.js';
import { dihedral, DIHEDRAL } from '../../src/core/predict.js';
import { probabilitiesLine, submissionLine } from '../../src/infer/submission.js';
import { listImages } from '../../src/infer/images.js';
import { combineModels } from '../../src/infer/combine.js';
import { scorePredictions } from '../../src/infer/scores.js';
import { ExpError } from '../../src/errors.js';
import { tempDir } from '../helpers/cli.js';

test('threshold search finds the known optimum per tag', () => {
  // Tag 0: positives at 0.30, negatives at 0.10 -> any threshold in [0.10, 0.30) is perfect.
  // Tag 1: positives at 0.90, negatives at 0.60 -> [0.60, 0.90) is perfect; 0.5 predicts every negative.
  const rows = [
    [1, 0],
    [0, 1],
    [1, 1],
    [0, 0],
    [1, 0],
    [0, 1],
  ];
  const probs = rows.flatMap(([a, b]) => [a ? 0.3 : 0.1, b ? 0.9 : 0.6]);
  const p = { probs, targets: rows.flat(), nTags: 2 };
  const before = fbetaAt(p, 2, [0.5, 0.5]);
  const tuned = tuneThresholds(p, 2);
  assert.ok(tuned.thresholds[0]! >= 0.1 && tuned.thresholds[0]! < 0.3, `tag 0 threshold ${tuned.thresholds[0]}`);
  assert.ok(tuned.thresholds[1]! >= 0.6 && tuned.thresholds[1]! < 0.9, `tag 1 threshold ${tuned.thresholds[1]}`);
  assert.equal(tuned.fbeta, 1);
  assert.equal(fbetaAt(p, 2, tuned.thresholds), 1);
  assert.ok(before < 0.9, `at 0.5: ${before}`);
  // Ties keep the threshold nearest the start: tag 1's nearest perfect value to 0.5 is 0.6.
  assert.equal(tuned.thresholds[1], 0.6);
});

test('the threshold search never loses to its start, and the held-out figure is not above the tuned one on noise', () => {
  let s = 7;
  const rnd = (): number => {
    s = (s * 1103515245 + 12345) % 2 ** 31;
    return s / 2 ** 31;
  };
  const n = 400,
    nTags = 5;
  const targets = Array.from({ length: n * nTags }, () => (rnd() < 0.3 ? 1 : 0));
  const probs = targets.map((t) => Math.min(0.99, Math.max(0.01, (t ? 0.45 : 0.25) + (rnd() - 0.5) * 0.5)));
  const p = { probs, targets, nTags };
  const tuned = tuneThresholds(p, 2);
  assert.ok(tuned.fbeta >= fbetaAt(p, 2, Array(nTags).fill(0.5)));
  assert.ok(Math.abs(tuned.fbeta - fbetaAt(p, 2, tuned.thresholds)) < 1e-12, 'reported score is the score of the thresholds');
  const held = heldOutEstimate(p, 2);
  assert.ok(held.tuned <= tuned.fbeta + 1e-9, `held-out ${held.tuned} vs in-sample ${tuned.fbeta}`);
  assert.ok(held.tuned > held.at_base, 'tuning helps on data where positives sit below 0.5');
});

test('the 8 dihedral views of a 2x2 image are its 4 rotations and their mirrors, all different', () => {
  // [[1, 2], [3, 4]] as a 1x2x2x1 image.
  const x = tf.tensor4d([1, 2, 3, 4], [1, 2, 2, 1]);
  const views = DIHEDRAL.map(({ k, flip }) => Array.from(dihedral(x, k, flip).dataSync()));
  assert.deepEqual(views[0], [1, 2, 3, 4]); // identity
  assert.deepEqual(views[1], [2, 1, 4, 3]); // left-right mirror
  assert.deepEqual(views[2], [2, 4, 1, 3]); // a quarter turn counter-clockwise
  assert.deepEqual(views[4], [4, 3, 2, 1]); // half turn
  assert.deepEqual(views[6], [3, 1, 4, 2]); // three quarter turns
  assert.equal(new Set(views.map((v) => v.join())).size, 8);
});

test('submission lines: tags above their threshold, in vocabulary order; none is an empty cell', () => {
  const tags = ['clear', 'haze', 'primary'];
  assert.equal(submissionLine('test_0', [0.9, 0.2, 0.6], tags, [0.5, 0.1, 0.7]), 'test_0,clear haze');
  assert.equal(submissionLine('test_1', [0.1, 0.05, 0.2], tags, [0.5, 0.1, 0.7]), 'test_1,');
  // A probability equal to the threshold is not above it.
  assert.equal(submissionLine('t', [0.5, 0.5, 0.5], tags, [0.5, 0.5, 0.5]), 't,');
  assert.equal(probabilitiesLine('t', [0.123456789, 1, 0], 3), 't,0.123457,1,0');
  assert.equal(probabilitiesLine('bad', null, 3), 'bad,,,');
});

test('image lists: a folder in natural order; a CSV in its own order, its images looked up in the folders beside it', () => {
  const dir = tempDir('exp-images-');
  mkdirSync(join(dir, 'test-jpg'));
  mkdirSync(join(dir, 'test-jpg-additional'));
  for (const n of ['test_10', 'test_2', 'test_1']) writeFileSync(join(dir, 'test-jpg', `${n}.jpg`), 'x');
  writeFileSync(join(dir, 'test-jpg-additional', 'file_0.jpg'), 'x');
  writeFileSync(join(dir, 'test-jpg', 'notes.txt'), 'x');
  assert.deepEqual(listImages(join(dir, 'test-jpg'), '.jpg').names, ['test_1', 'test_2', 'test_10']);
  writeFileSync(join(dir, 'sample_submission_v2.csv'), 'image_name,tags\ntest_10,primary\nfile_0,primary\ntest_404,primary\n');
  const l = listImages(join(dir, 'sample_submission_v2.csv'), '.jpg');
  assert.deepEqual(l.names, ['test_10', 'file_0', 'test_404']);
  assert.deepEqual(
    l.files.map((f) => f.replace(dir, '')),
    ['/test-jpg/test_10.jpg', '/test-jpg-additional/file_0.jpg', ''],
  );
  writeFileSync(join(dir, 'bad.csv'), 'name,tags\nx,y\n');
  assert.throws(
    () => listImages(join(dir, 'bad.csv'), '.jpg'),
    (e: ExpError) => e.code === 'CSV_INVALID' && /image_name/.test(e.message),
  );
  assert.throws(
    () => listImages(join(dir, 'nope'), '.jpg'),
    (e: ExpError) => e.code === 'IMAGE_DIR_NOT_FOUND',
  );
});

test('scores: confusion counts add up and the loss is binary cross-entropy', () => {
  const s = scorePredictions([0.9, 0.1, 0.8, 0.7], [1, 0, 0, 1], ['a', 'b'], 2, [0.5, 0.5]);
  assert.deepEqual(s.confusion.a, { tp: 1, fp: 1, fn: 0, tn: 0 });
  assert.deepEqual(s.confusion.b, { tp: 1, fp: 0, fn: 0, tn: 1 });
  const bce = -(Math.log(0.9) + Math.log(0.9) + Math.log(0.2) + Math.log(0.7)) / 4;
  assert.ok(Math.abs(s.loss - bce) < 1e-6);
});

test('an ensemble is one model whose output is the mean of its members', async () => {
  const member = (seed: number): tf.LayersModel => {
    const input = tf.input({ shape: [4], name: 'input' });
    const h = tf.layers
      .dense({ units: 3, activation: 'relu', name: 'hidden', kernelInitializer: tf.initializers.glorotUniform({ seed }) })
      .apply(input) as tf.SymbolicTensor;
    const out = tf.layers
      .dense({ units: 2, activation: 'sigmoid', name: 'out', kernelInitializer: tf.initializers.glorotUniform({ seed: seed + 1 }) })
      .apply(h) as tf.SymbolicTensor;
    return tf.model({ inputs: input, outputs: out });
  };
  const a = member(1),
    b = member(2);
  const x = tf.tensor2d([
    [1, 2, 3, 4],
    [-1, 0.5, 2, 0],
  ]);
  const want = tf.div(tf.add(a.predict(x) as tf.Tensor, b.predict(x) as tf.Tensor), 2);
  const combined = await combineModels([a, b]);
  const got = combined.predict(x) as tf.Tensor;
  const diff = tf.max(tf.abs(tf.sub(got, want))).dataSync()[0]!;
  assert.ok(diff < 1e-6, `max difference ${diff}`);
  assert.deepEqual(combined.layers.map((l) => l.name).sort(), ['ensemble_mean', 'input', 'm0_hidden', 'm0_out', 'm1_hidden', 'm1_out']);
});
