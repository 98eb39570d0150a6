// Each transform against small hand-computed images, on the cpu backend.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs';
import { applyAugment, drawParams, type AugmentParams } from '../../src/data/augment.js';
import { preprocess } from '../../src/data/preprocess.js';

await tf.setBackend('cpu');
const none: AugmentParams = { angle: 0, flipH: false, flipV: false, quarterTurns: 0 };
/** A 1-channel 3x3 image [[1,2,3],[4,5,6],[7,8,9]] as [1,3,3,1]. */
const img = (): tf.Tensor4D => tf.tensor4d([1, 2, 3, 4, 5, 6, 7, 8, 9], [1, 3, 3, 1]);
const run = (p: Partial<AugmentParams>, fill: 'nearest' | 'constant' | 'reflect' | 'wrap' = 'nearest', x = img()): number[] => {
  const out = applyAugment(x, [{ ...none, ...p }], fill);
  const v = Array.from(out.dataSync()).map((n) => Math.round(n * 1000) / 1000);
  out.dispose(); x.dispose();
  return v;
};

test('horizontal and vertical flips are exact', () => {
  assert.deepEqual(run({ flipH: true }), [3, 2, 1, 6, 5, 4, 9, 8, 7]);
  assert.deepEqual(run({ flipV: true }), [7, 8, 9, 4, 5, 6, 1, 2, 3]);
  assert.deepEqual(run({ flipH: true, flipV: true }), [9, 8, 7, 6, 5, 4, 3, 2, 1]);
});

test('dihedral quarter turns are exact, and four make the identity', () => {
  assert.deepEqual(run({ quarterTurns: 1 }), [7, 4, 1, 8, 5, 2, 9, 6, 3]);
  assert.deepEqual(run({ quarterTurns: 2 }), [9, 8, 7, 6, 5, 4, 3, 2, 1]);
  assert.deepEqual(run({ quarterTurns: 4 }), [1, 2, 3, 4, 5, 6, 7, 8, 9]);
});

test('rotation by -90 degrees equals one quarter turn; the centre is fixed', () => {
  assert.deepEqual(run({ angle: -90 }), run({ quarterTurns: 1 }));
  assert.equal(run({ angle: 37 })[4], 5);
});

test('rotation samples bilinearly with nearest fill (hand-computed 45 degrees)', () => {
  // Output (0,0) is 1.414 from the centre (1,1); the inverse rotation takes it to
  // (1 - 1.414, 1) or (1, 1 - 1.414): x = -0.414 clamps to 0 on a row of the image.
  // For angle 45 the source of output (x=0, y=0) is (x=1, y=1-sqrt2) -> clamped y=0 -> value 2.
  const v = run({ angle: 45 });
  assert.equal(v[0], 2);
  // Output (x=1, y=0): source (1 + s, 1 - s) with s = 1/sqrt2 = 0.7071:
  // bilinear between rows 0..1 and cols 1..2 = 2*(1-fx)(1-fy)+3*fx(1-fy)+5*(1-fx)fy+6*fx*fy with fx=0.7071, fy=0.2929.
  const fx = Math.SQRT1_2, fy = 1 - Math.SQRT1_2;
  const expected = 2 * (1 - fx) * (1 - fy) + 3 * fx * (1 - fy) + 5 * (1 - fx) * fy + 6 * fx * fy;
  assert.ok(Math.abs(v[1]! - expected) < 1e-3, `${v[1]} vs ${expected}`);
});

test('fill modes: constant gives zeros outside, wrap and reflect stay inside the image', () => {
  // 5x5: the corner's source lies 0.83 px outside the image, past the half-pixel border.
  const five = () => tf.tensor4d(Array.from({ length: 25 }, (_, i) => i + 1), [1, 5, 5, 1]);
  const c = run({ angle: 45 }, 'constant', five());
  assert.equal(c[0], 0);
  assert.equal(c[12], 13);
  assert.notEqual(run({ angle: 45 }, 'nearest', five())[0], 0);
  for (const mode of ['wrap', 'reflect'] as const) for (const v of run({ angle: 30 }, mode)) assert.ok(v >= 1 && v <= 9, `${mode} ${v}`);
});

test('multi-channel batches: each image gets its own transform; no tensors leak', () => {
  const x = tf.tensor4d(Array.from({ length: 2 * 2 * 2 * 3 }, (_, i) => i), [2, 2, 2, 3]);
  const before = tf.memory().numTensors;
  const out = applyAugment(x, [{ ...none, flipH: true }, none], 'nearest');
  const v = out.arraySync();
  assert.deepEqual(v[0]![0]![0], [3, 4, 5]);
  assert.deepEqual(v[1]![0]![0], [12, 13, 14]);
  out.dispose();
  assert.equal(tf.memory().numTensors, before);
  x.dispose();
});

test('draws are seeded by (seed, epoch, batch) and respect the config', () => {
  const cfg = { horizontal_flip: true, vertical_flip: false, rotation_range: 10, fill_mode: 'nearest' as const, dihedral: true };
  assert.deepEqual(drawParams(cfg, 8, 1, 2, 3), drawParams(cfg, 8, 1, 2, 3));
  assert.notDeepEqual(drawParams(cfg, 8, 1, 2, 3), drawParams(cfg, 8, 1, 2, 4));
  for (const p of drawParams(cfg, 200, 0, 0, 0)) {
    assert.ok(Math.abs(p.angle) <= 10 && !p.flipV && p.quarterTurns >= 0 && p.quarterTurns < 4);
  }
  const flips = drawParams(cfg, 1000, 0, 0, 0).filter((p) => p.flipH).length;
  assert.ok(flips > 430 && flips < 570, `p=0.5 flips: ${flips}`);
});

test('caffe preprocessing swaps RGB to BGR and subtracts the BGR mean; rgb_mean does not swap', () => {
  const x = tf.tensor4d([10, 20, 30], [1, 1, 1, 3]);
  const caffe = Array.from(preprocess(x, 'caffe').dataSync());
  [30 - 103.939, 20 - 116.779, 10 - 123.68].forEach((e, i) => assert.ok(Math.abs(caffe[i]! - e) < 1e-4));
  const rgb = Array.from(preprocess(x, 'rgb_mean').dataSync());
  [10 - 123.68, 20 - 116.779, 30 - 103.939].forEach((e, i) => assert.ok(Math.abs(rgb[i]! - e) < 1e-4));
  assert.deepEqual(Array.from(preprocess(x, 'none').dataSync()), [10, 20, 30]);
});
