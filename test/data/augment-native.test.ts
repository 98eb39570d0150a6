// On native TensorFlow, 'nearest'-fill augmentation runs as TensorFlow's own warp op
// (ImageProjectiveTransformV3): the hand-computed cases of augment.test.ts hold for it too, and
// on real batches it agrees with the portable path that every other backend runs.
import { before, test } from 'node:test';
import assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs';
import { selectBackend } from '../../src/backend/select.js';
import { applyAugment, drawParams, type AugmentParams } from '../../src/data/augment.js';

let skip: string | false = false;
before(async () => {
  try {
    await selectBackend('tensorflow');
  } catch {
    skip = 'the native backend is not built here';
  }
});

const none: AugmentParams = { angle: 0, flipH: false, flipV: false, quarterTurns: 0 };
const run = (p: Partial<AugmentParams>, portable = false): number[] =>
  tf.tidy(() =>
    Array.from(applyAugment(tf.tensor4d([1, 2, 3, 4, 5, 6, 7, 8, 9], [1, 3, 3, 1]), [{ ...none, ...p }], 'nearest', { portable }).dataSync()).map(
      (n) => Math.round(n * 1000) / 1000,
    ),
  );

test('flips, quarter turns and rotations come out as the hand-computed images', (t) => {
  if (skip) return t.skip(skip);
  assert.deepEqual(run({ flipH: true }), [3, 2, 1, 6, 5, 4, 9, 8, 7]);
  assert.deepEqual(run({ flipV: true }), [7, 8, 9, 4, 5, 6, 1, 2, 3]);
  assert.deepEqual(run({ quarterTurns: 1 }), [7, 4, 1, 8, 5, 2, 9, 6, 3]);
  assert.deepEqual(run({ angle: -90 }), run({ quarterTurns: 1 }));
  const v = run({ angle: 45 });
  assert.equal(v[0], 2); // the corner's source clamps to the top row
  const fx = Math.SQRT1_2,
    fy = 1 - Math.SQRT1_2;
  const expected = 2 * (1 - fx) * (1 - fy) + 3 * fx * (1 - fy) + 5 * (1 - fx) * fy + 6 * fx * fy;
  assert.ok(Math.abs(v[1]! - expected) < 1e-3, `${v[1]} vs ${expected}`);
});

test("the recipe's augmentation on real-sized batches: native and portable agree to 0.05 of 255", (t) => {
  if (skip) return t.skip(skip);
  for (const [size, n, dihedral] of [
    [32, 16, false],
    [128, 8, true],
  ] as const) {
    const x = tf.randomUniform([n, size, size, 3], 0, 255, 'float32', size) as tf.Tensor4D;
    const params = drawParams({ horizontal_flip: true, vertical_flip: true, rotation_range: 90, fill_mode: 'nearest', dihedral }, n, 1, 2, 3);
    const before = tf.memory().numTensors;
    const a = applyAugment(x, params, 'nearest');
    const b = applyAugment(x, params, 'nearest', { portable: true });
    const err = tf.tidy(() => tf.max(tf.abs(tf.sub(a, b))).dataSync()[0]!);
    assert.ok(err < 0.05, `${size}px: max |diff| ${err}`);
    tf.dispose([a, b]);
    assert.equal(tf.memory().numTensors, before, 'no tensor leaked');
    x.dispose();
  }
});
