// The frozen front of the model runs outside the gradient tape: which layers it takes, and that
// a training step through it changes exactly what the plain step (model.apply under the tape) does.
import { before, test } from 'node:test';
import assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs';
import { selectBackend } from '../../src/backend/select.js';
import { splitFrozen } from '../../src/model/frozen.js';
import { buildModel, type BuildOptions, type HeadOptions } from '../../src/model/vgg16.js';
import { trainStep } from '../../src/train/loop.js';
import { bceSum } from '../../src/core/loss.js';

const HEAD: HeadOptions = { pooling: 'flatten', units: 16, activation: 'relu', initializer: 'he_uniform', dropout: 0 };
const opts = (over: Partial<BuildOptions>): BuildOptions => ({ imageSize: 32, nTags: 5, trainableBlocks: [5], head: HEAD, seed: 3, ...over });

before(async () => {
  await selectBackend('auto');
});

test('the front is every untrainable, mode-free layer before the first trainable one', () => {
  const cases: [Partial<BuildOptions>, number][] = [
    [{ trainableBlocks: [5] }, 14], // blocks 1-4: 10 convs and 4 pools
    [{ trainableBlocks: [4, 5] }, 10],
    [{ trainableBlocks: [1, 2, 3, 4, 5] }, 0],
    [{ trainableBlocks: [] }, 19], // the whole base and the flatten: only the head trains
    [{ trainableBlocks: [], head: { ...HEAD, pooling: 'avg' } }, 19],
  ];
  for (const [over, n] of cases) {
    const m = buildModel(opts(over));
    assert.equal(splitFrozen(m).frozenLayers, n, JSON.stringify(over));
    m.dispose();
  }
});

test('a step through the split updates the weights exactly as the plain step does', () => {
  const x = tf.randomUniform([3, 32, 32, 3], -100, 100, 'float32', 7) as tf.Tensor4D;
  const y = tf.tensor2d([1, 0, 1, 0, 0, 0, 1, 1, 0, 1, 1, 1, 0, 0, 0], [3, 5]);
  for (const trainableBlocks of [[5], [], [1, 2, 3, 4, 5]]) {
    const a = buildModel(opts({ trainableBlocks }));
    const b = buildModel(opts({ trainableBlocks }));
    const varsOf = (m: tf.LayersModel): tf.Variable[] => m.trainableWeights.map((w) => w.read() as tf.Variable);
    const optA = tf.train.adam(1e-3);
    const optB = tf.train.adam(1e-3);
    const split = splitFrozen(a);
    const { cost, probs } = trainStep(split, optA, varsOf(a), x, y);
    const plain = optB.minimize(() => tf.div(bceSum(b.apply(x, { training: true }) as tf.Tensor2D, y), 3) as tf.Scalar, true, varsOf(b))!;
    assert.ok(Math.abs(cost.dataSync()[0]! - plain.dataSync()[0]!) < 1e-6, `loss ${cost.dataSync()[0]} vs ${plain.dataSync()[0]}`);
    assert.deepEqual(probs.shape, [3, 5]);
    tf.dispose([cost, plain, probs]);
    for (const [wa, wb] of a.trainableWeights.map((w, i) => [w.read(), b.trainableWeights[i]!.read()] as const)) {
      const d = tf.tidy(() => tf.max(tf.abs(tf.sub(wa, wb))).dataSync()[0]!);
      assert.ok(d < 1e-6, `${JSON.stringify(trainableBlocks)}: weights differ by ${d}`);
    }
    // Adam made its slots in the first step; a second step leaves no tensor behind.
    const before = tf.memory().numTensors;
    const again = trainStep(split, optA, varsOf(a), x, y);
    tf.dispose([again.cost, again.probs]);
    assert.equal(tf.memory().numTensors, before);
    a.dispose();
    b.dispose();
    optA.dispose();
    optB.dispose();
  }
  tf.dispose([x, y]);
});
