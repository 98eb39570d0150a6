import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs';
import h5wasm from 'h5wasm/node';
import { loadKerasWeights, openKerasH5, readStringList } from '../../src/model/keras-h5.js';
import { WeightsError } from '../../src/model/errors.js';
import { resolveWeights } from '../../src/model/weights.js';
import { loadWeights } from '../../src/model/keras-h5.js';
import { buildModel, HEAD_LAYERS, VGG16_CONV_LAYERS } from '../../src/model/vgg16.js';
import { tempDir } from '../helpers/cli.js';
import { fixtureValue, vgg16FixtureLayers, writeKerasH5, type FixtureLayer } from './keras-h5-writer.js';

const dir = tempDir('exp-model-h5-');
const full = join(dir, 'vgg16_notop.h5');
const LAYERS = vgg16FixtureLayers();
const HEAD = { pooling: 'flatten', units: 8, activation: 'relu', initializer: 'he_uniform', dropout: 0 } as const;
// Conv kernel shapes do not depend on the input size, so the smallest VGG16 input takes the full-size file.
const small = (seed = 1): tf.LayersModel => buildModel({ imageSize: 32, nTags: 3, trainableBlocks: [5], head: HEAD, seed });
// A layer the model does not have, as in the with-top ImageNet file.
const FC1: FixtureLayer = {
  name: 'fc1',
  weights: [
    { name: 'fc1_W_1:0', shape: [4, 2], value: (i) => i },
    { name: 'fc1_b_1:0', shape: [2], value: () => 0 },
  ],
};
let model: tf.LayersModel;

const rejects = async (p: Promise<unknown>, code: string, layer?: string): Promise<WeightsError> => {
  try {
    await p;
  } catch (err) {
    assert.ok(err instanceof WeightsError, `expected a WeightsError, got ${String(err)}`);
    assert.equal(err.code, code, err.message);
    if (layer !== undefined) assert.equal(err.layer, layer);
    return err;
  }
  assert.fail(`expected ${code}`);
};

before(async () => {
  await tf.setBackend('cpu');
  const t = Date.now();
  await writeKerasH5(full, [...LAYERS, FC1]);
  console.log(`# wrote a full-size VGG16 no-top .h5 (${VGG16_CONV_LAYERS.length} conv layers) in ${Date.now() - t} ms`);
  model = small();
});
after(() => {
  model.dispose();
  rmSync(dir, { recursive: true, force: true });
});

/** Block 1 of the file only (small), with one layer replaced. */
const block1With = (replace: FixtureLayer): FixtureLayer[] => LAYERS.slice(0, 3).map((l) => (l.name === replace.name ? replace : l));

test('every kernel and bias of a Keras-layout file lands in the layer of the same name; extra layers and the head are left alone', async () => {
  const headBefore = model
    .getLayer(HEAD_LAYERS.dense)
    .getWeights()
    .map((w) => w.dataSync().slice());
  const tensorsBefore = tf.memory().numTensors;
  const t = Date.now();
  // The way the trainer will call it.
  const report = await loadWeights(model, await resolveWeights(full));
  console.log(`# loaded 14,714,688 parameters from HDF5 in ${Date.now() - t} ms`);
  assert.equal(tf.memory().numTensors, tensorsBefore, 'loading leaks no tensors');
  assert.deepEqual(report.loaded, VGG16_CONV_LAYERS);
  assert.deepEqual(report.ignored, ['fc1']);
  for (const name of VGG16_CONV_LAYERS) {
    const li = LAYERS.findIndex((l) => l.name === name);
    const [kernel, bias] = model.getLayer(name).getWeights();
    for (const [w, isBias] of [
      [kernel!, false],
      [bias!, true],
    ] as const) {
      const got = w.dataSync();
      const want = fixtureValue(li, isBias);
      // Compare the whole array but report only the first difference.
      const bad = got.findIndex((v, i) => v !== want(i));
      assert.equal(bad, -1, `${name} ${isBias ? 'bias' : 'kernel'}[${bad}] = ${got[bad]}, expected ${want(bad)}`);
    }
  }
  assert.deepEqual(
    model
      .getLayer(HEAD_LAYERS.dense)
      .getWeights()
      .map((w) => w.dataSync().slice()),
    headBefore,
  );
});

test('chunked layer_names0, layer_names1, ... and a full-model file (model_weights/) are read like the plain layout', async () => {
  const few = LAYERS.slice(0, 6);
  for (const [name, opts] of [
    ['chunked.h5', { chunks: 3 }],
    ['model.h5', { modelWeights: true }],
  ] as const) {
    const path = join(dir, name);
    await writeKerasH5(path, few, opts);
    const { file, layers } = await openKerasH5(path);
    try {
      assert.deepEqual(
        [...layers.keys()],
        few.map((l) => l.name),
      );
      assert.deepEqual(
        layers.get('block2_conv1')!.weights.map((w) => [w.name, w.shape]),
        [
          ['block2_conv1_W_1:0', [3, 3, 64, 128]],
          ['block2_conv1_b_1:0', [128]],
        ],
      );
      assert.deepEqual(layers.get('block1_pool')!.weights, []);
      if (name === 'chunked.h5') {
        assert.equal('layer_names' in file.attrs, false);
        assert.deepEqual(
          readStringList(file, 'layer_names'),
          few.map((l) => l.name),
        );
      }
    } finally {
      file.close();
    }
  }
});

test('a layer missing from the file is an error naming that layer (and the others missing), and nothing is loaded', async () => {
  const path = join(dir, 'missing.h5');
  await writeKerasH5(
    path,
    LAYERS.slice(0, 3).filter((l) => l.name !== 'block1_conv2'),
  );
  const before = model.getLayer('block1_conv1').getWeights()[0]!.dataSync().slice();
  const err = await rejects(loadKerasWeights(model, path), 'WEIGHTS_MISSING_LAYER', 'block1_conv2');
  assert.equal(err.file, path);
  assert.match(err.message, /'block1_conv2' \(nor for block2_conv1, .*block5_conv3\)/);
  assert.deepEqual(model.getLayer('block1_conv1').getWeights()[0]!.dataSync(), before, 'a failed load changes no weight');
});

test('a kernel of the wrong shape, missing weights, or integer weights are errors naming the layer', async () => {
  const path = join(dir, 'shape.h5');
  await writeKerasH5(
    path,
    block1With({
      name: 'block1_conv2',
      weights: [
        { name: 'block1_conv2_W_1:0', shape: [3, 3, 64, 32], value: () => 1 },
        { name: 'block1_conv2_b_1:0', shape: [32], value: () => 1 },
      ],
    }),
  );
  const err = await rejects(loadKerasWeights(model, path), 'WEIGHTS_SHAPE', 'block1_conv2');
  assert.match(err.message, /\[\[3,3,64,32\],\[32\]\] in the file but \[\[3,3,64,64\],\[64\]\] in the model/);

  await writeKerasH5(path, block1With({ name: 'block1_conv1', weights: [LAYERS[0]!.weights[0]!] }));
  await rejects(loadKerasWeights(model, path), 'WEIGHTS_SHAPE', 'block1_conv1');

  await writeKerasH5(path, [...LAYERS.slice(0, 3), { name: 'block2_conv1', weights: [] }]);
  await rejects(loadKerasWeights(model, path), 'WEIGHTS_SHAPE', 'block2_conv1');

  const [kernel, bias] = LAYERS[0]!.weights;
  await writeKerasH5(path, block1With({ name: 'block1_conv1', weights: [{ ...kernel!, dtype: 'int32' }, bias!] }));
  const err2 = await rejects(loadKerasWeights(model, path), 'WEIGHTS_FORMAT', 'block1_conv1');
  assert.match(err2.message, /block1_conv1_W_1:0/);
  rmSync(path);
});

test('a file that is not HDF5, or HDF5 without layer_names, or absent, is a typed error naming it', async () => {
  const text = join(dir, 'not.h5');
  writeFileSync(text, 'this is not HDF5\n');
  assert.equal((await rejects(loadKerasWeights(model, text), 'WEIGHTS_FORMAT')).file, text);

  const bare = join(dir, 'bare.h5');
  await h5wasm.ready;
  const f = new h5wasm.File(bare, 'w');
  f.create_group('block1_conv1');
  f.close();
  const err = await rejects(loadKerasWeights(model, bare), 'WEIGHTS_FORMAT');
  assert.match(err.message, /layer_names/);

  await rejects(loadKerasWeights(model, join(dir, 'absent.h5')), 'WEIGHTS_NOT_FOUND');
});
