import { before, test } from 'node:test';
import assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs';
import { buildModel, countParams, HEAD_LAYERS, VGG16_CONV_LAYERS, type BuildOptions, type HeadOptions } from '../../src/model/vgg16.js';
import { SeededDropout } from '../../src/model/dropout.js';

const RECIPE_HEAD: HeadOptions = { pooling: 'flatten', units: 128, activation: 'relu', initializer: 'he_uniform', dropout: 0 };
const recipe = (over: Partial<BuildOptions> = {}): BuildOptions => ({ imageSize: 128, nTags: 17, trainableBlocks: [5], head: RECIPE_HEAD, seed: 1, ...over });

/** Builds, runs `fn`, disposes: a VGG16 holds 60 MB of weights. */
function withModel<T>(opts: BuildOptions, fn: (m: tf.LayersModel) => T): T {
  const m = buildModel(opts);
  try {
    return fn(m);
  } finally {
    m.dispose();
  }
}
async function withModelAsync(opts: BuildOptions, fn: (m: tf.LayersModel) => Promise<void>): Promise<void> {
  const m = buildModel(opts);
  try {
    await fn(m);
  } finally {
    m.dispose();
  }
}

const KERAS_NAMES = [
  'block1_conv1',
  'block1_conv2',
  'block1_pool',
  'block2_conv1',
  'block2_conv2',
  'block2_pool',
  'block3_conv1',
  'block3_conv2',
  'block3_conv3',
  'block3_pool',
  'block4_conv1',
  'block4_conv2',
  'block4_conv3',
  'block4_pool',
  'block5_conv1',
  'block5_conv2',
  'block5_conv3',
  'block5_pool',
];

before(async () => {
  await tf.setBackend('cpu');
});

test("the base has Keras's VGG16 layer names, 3x3 same relu convs and 2x2/2 pools, NHWC in, nTags sigmoid out", () => {
  withModel(recipe(), (m) => {
    assert.deepEqual(
      m.layers.map((l) => l.name),
      ['input', ...KERAS_NAMES, 'flatten', 'head_dense', 'head_out'],
    );
    assert.deepEqual(m.inputs[0]!.shape, [null, 128, 128, 3]);
    assert.deepEqual(m.outputs[0]!.shape, [null, 17]);
    for (const name of VGG16_CONV_LAYERS) {
      const c = m.getLayer(name).getConfig();
      assert.deepEqual([c.kernelSize, c.strides, c.padding, c.activation], [[3, 3], [1, 1], 'same', 'relu'], name);
    }
    for (const name of KERAS_NAMES.filter((n) => n.endsWith('_pool'))) {
      const c = m.getLayer(name).getConfig();
      assert.deepEqual([c.poolSize, c.strides, c.padding], [[2, 2], [2, 2], 'valid'], name);
    }
    assert.equal(m.getLayer('block5_pool').outputShape.toString(), [null, 4, 4, 512].toString());
    assert.equal(m.getLayer(HEAD_LAYERS.out).getConfig().activation, 'sigmoid');
  });
});

test('parameter counts match Keras: 14,714,688 base, 8,192 features and 1,050,897 head at 128, 8,130,321 trainable with block5', () => {
  withModel(recipe(), (m) => {
    assert.equal(countParams(m, VGG16_CONV_LAYERS).total, 14_714_688);
    assert.deepEqual(m.getLayer('flatten').outputShape, [null, 8192]);
    assert.equal(countParams(m, [HEAD_LAYERS.dense, HEAD_LAYERS.out]).total, 1_050_897);
    assert.deepEqual(countParams(m), { total: 15_765_585, trainable: 8_130_321, nonTrainable: 7_635_264 });
    assert.equal(m.countParams(), 15_765_585);
  });
});

test('only the layers of trainable blocks and the head have trainable weights', () => {
  const trainableLayers = (blocks: number[]): string[] =>
    withModel(recipe({ imageSize: 32, trainableBlocks: blocks }), (m) => [...new Set(m.trainableWeights.map((w) => w.originalName.split('/')[0]!))]);
  assert.deepEqual(trainableLayers([5]), ['block5_conv1', 'block5_conv2', 'block5_conv3', 'head_dense', 'head_out']);
  assert.deepEqual(trainableLayers([]), ['head_dense', 'head_out']);
  assert.deepEqual(trainableLayers([4, 2]), ['block2_conv1', 'block2_conv2', 'block4_conv1', 'block4_conv2', 'block4_conv3', 'head_dense', 'head_out']);
  assert.equal(trainableLayers([1, 2, 3, 4, 5]).length, 15);
});

test('a training step with blocks 1-4 frozen computes gradients for block5 and the head only', async () => {
  await withModelAsync(recipe({ imageSize: 32, head: { ...RECIPE_HEAD, units: 8 } }), async (m) => {
    const x = tf.randomUniform([1, 32, 32, 3], -100, 100, 'float32', 7);
    const y = tf.tensor2d([[1, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1]]);
    const vars = m.trainableWeights.map((w) => w.read() as tf.Variable);
    const before = tf.memory().numTensors;
    // What fit() does: minimise over model.trainableWeights only.
    const prof = await tf.profile(() => {
      const { value, grads } = tf.variableGrads(() => tf.losses.sigmoidCrossEntropy(y, m.apply(x, { training: true }) as tf.Tensor) as tf.Scalar, vars);
      return [value, ...Object.values(grads)];
    });
    const count = (kernel: string): number => prof.kernels.filter((k) => k.name === kernel).length;
    assert.equal(count('Conv2D'), 13);
    assert.equal(count('Conv2DBackpropFilter'), 3, 'a filter gradient for each block5 conv');
    assert.equal(count('Conv2DBackpropInput'), 2, 'input gradients stop at block5_conv1: nothing below it trains');
    assert.equal(count('MaxPoolGrad'), 1, 'only block5_pool is back-propagated');
    tf.dispose(prof.result as tf.Tensor[]);
    assert.equal(tf.memory().numTensors, before);
    tf.dispose([x, y]);
  });
});

test('the same seed gives the same weights; layers of equal shape and other seeds differ', () => {
  const weights = (seed: number): Float32Array[] =>
    withModel(recipe({ imageSize: 32, seed, head: { ...RECIPE_HEAD, units: 8 } }), (m) => m.weights.map((w) => w.read().dataSync() as Float32Array));
  const a = weights(3);
  const b = weights(3);
  const c = weights(4);
  assert.equal(a.length, 30);
  a.forEach((w, i) => assert.deepEqual(w, b[i], `weight ${i} is reproducible`));
  const kernels = a.filter((_, i) => i % 2 === 0);
  assert.notDeepEqual(kernels[11], kernels[12], 'block5_conv2 and block5_conv3 get different seeds');
  assert.notDeepEqual(a[0], c[0]);
});

test('avg pooling gives 512 features; dropout > 0 adds a seeded dropout layer', () => {
  withModel(recipe({ imageSize: 64, head: { ...RECIPE_HEAD, pooling: 'avg', dropout: 0.25, activation: 'elu', initializer: 'glorot_normal' } }), (m) => {
    assert.deepEqual(
      m.layers.slice(-4).map((l) => l.name),
      [HEAD_LAYERS.avgPool, HEAD_LAYERS.dense, HEAD_LAYERS.dropout, HEAD_LAYERS.out],
    );
    assert.deepEqual(m.getLayer(HEAD_LAYERS.avgPool).outputShape, [null, 512]);
    assert.equal(countParams(m, [HEAD_LAYERS.dense, HEAD_LAYERS.out]).total, 512 * 128 + 128 + 128 * 17 + 17);
  });
});

test('seeded dropout: identity at inference; in training reproducible from the seed, different from step to step', () => {
  const x = tf.ones([4, 64]);
  const masks = (seed: number): number[][] => {
    const d = new SeededDropout({ name: 'd', rate: 0.5, seed });
    const out = [0, 1].map(() => tf.tidy(() => Array.from((d.apply(x, { training: true }) as tf.Tensor).dataSync())));
    assert.deepEqual(Array.from((d.apply(x) as tf.Tensor).dataSync()), Array(256).fill(1));
    return out;
  };
  const [a1, a2] = masks(9);
  const [b1] = masks(9);
  assert.deepEqual(a1, b1);
  assert.notDeepEqual(a1, a2);
  assert.ok(
    a1!.every((v) => v === 0 || v === 2),
    'kept units are scaled by 1/(1-rate)',
  );
  assert.ok(a1!.some((v) => v === 0) && a1!.some((v) => v === 2));
  x.dispose();
});

test('seeded dropout is active in fit() (one mask per batch) and inactive in predict()', async () => {
  const input = tf.input({ shape: [6] });
  const drop = new SeededDropout({ name: 'd', rate: 0.5, seed: 1 });
  const m = tf.model({ inputs: input, outputs: tf.layers.dense({ units: 1 }).apply(drop.apply(input)) as tf.SymbolicTensor });
  m.compile({ optimizer: 'sgd', loss: 'meanSquaredError' });
  const [x, y] = [tf.ones([8, 6]), tf.ones([8, 1])];
  await m.fit(x, y, { batchSize: 4, epochs: 1, verbose: 0 });
  assert.equal(drop.step, 2);
  tf.dispose(m.predict(x) as tf.Tensor);
  assert.equal(drop.step, 2);
  tf.dispose([x, y]);
  m.dispose();
});

test('impossible options are refused before anything is built', () => {
  assert.throws(() => buildModel(recipe({ imageSize: 16 })), RangeError);
  assert.throws(() => buildModel(recipe({ trainableBlocks: [6] })), /1-5/);
  assert.throws(() => buildModel(recipe({ head: { ...RECIPE_HEAD, dropout: 1 } })), RangeError);
});
