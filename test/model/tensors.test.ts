import { before, test } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync, readFileSync, rmSync, truncateSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { hasTensors, loadModelWeights, readTensors, saveModelWeights, writeTensors, type TensorManifest } from '../../src/model/tensors.js';
import { WeightsError } from '../../src/model/errors.js';
import { buildModel, type BuildOptions } from '../../src/model/vgg16.js';
import { tempDir } from '../helpers/cli.js';

before(async () => {
  await tf.setBackend('cpu');
});

const code = (fn: () => unknown): string => {
  try {
    fn();
  } catch (err) {
    assert.ok(err instanceof WeightsError, String(err));
    return err.code;
  }
  return 'no error';
};

test('writeTensors/readTensors round-trip every value bit for bit, with names, shapes and dtypes', async () => {
  const dir = tempDir('exp-tensors-');
  const special = new Float32Array([NaN, -0, Infinity, -Infinity, 1e-45, 3.4028234663852886e38, Math.PI, -1.5]);
  const tensors = [
    { name: 'block5_conv1/kernel', tensor: tf.randomNormal([3, 3, 4, 5], 0, 1, 'float32', 1) },
    { name: 'special', tensor: tf.tensor(special, [2, 4]) },
    { name: 'iter', tensor: tf.scalar(1234567, 'int32') },
    { name: 'ints', tensor: tf.tensor1d([-2147483648, 0, 2147483647], 'int32') },
    { name: 'mask', tensor: tf.tensor1d([true, false, true], 'bool') },
    { name: 'empty', tensor: tf.zeros([0, 3]) },
  ];
  await writeTensors(dir, 'state', tensors);
  assert.ok(hasTensors(dir, 'state'));
  const back = readTensors(dir, 'state');
  assert.deepEqual(
    back.map((t) => [t.name, t.tensor.shape, t.tensor.dtype]),
    tensors.map((t) => [t.name, t.tensor.shape, t.tensor.dtype]),
  );
  tensors.forEach((t, i) => {
    const want = t.tensor.dataSync();
    const got = back[i]!.tensor.dataSync();
    // Compare raw bytes, so NaN and -0 count too.
    assert.deepEqual(Buffer.from(got.buffer, got.byteOffset, got.byteLength), Buffer.from(want.buffer, want.byteOffset, want.byteLength), t.name);
  });
  tf.dispose([...tensors, ...back].map((t) => t.tensor));
  rmSync(dir, { recursive: true });
});

test('rewriting a prefix replaces the pair and leaves no stale or temp files; other prefixes are untouched', async () => {
  const dir = tempDir('exp-tensors-');
  const a = tf.ones([3]);
  const b = tf.zeros([2, 2]);
  await writeTensors(dir, 'weights', [{ name: 'a', tensor: a }]);
  await writeTensors(dir, 'optimizer', [{ name: 'm', tensor: a }]);
  const m2 = await writeTensors(dir, 'weights', [{ name: 'b', tensor: b }]);
  const files = readdirSync(dir).sort();
  assert.equal(files.length, 4, files.join(' '));
  assert.ok(files.includes(m2.data) && files.includes('weights.json') && files.includes('optimizer.json'));
  const back = readTensors(dir, 'weights');
  assert.deepEqual(
    back.map((t) => t.name),
    ['b'],
  );
  tf.dispose([a, b, ...back.map((t) => t.tensor), ...readTensors(dir, 'optimizer').map((t) => t.tensor)]);
  rmSync(dir, { recursive: true });
});

test('a missing, truncated or foreign checkpoint is CHECKPOINT_FORMAT, not a crash or garbage', async () => {
  const dir = tempDir('exp-tensors-');
  assert.equal(
    code(() => readTensors(dir, 'nothing')),
    'CHECKPOINT_FORMAT',
  );
  const t = tf.ones([10]);
  const manifest = await writeTensors(dir, 'w', [{ name: 'x', tensor: t }]);
  truncateSync(join(dir, manifest.data), 20);
  assert.equal(
    code(() => readTensors(dir, 'w')),
    'CHECKPOINT_FORMAT',
  );
  const lying: TensorManifest = { ...manifest, byteLength: 20, tensors: [{ ...manifest.tensors[0]!, shape: [1000], byteLength: 4000 }] };
  writeFileSync(join(dir, 'w.json'), JSON.stringify(lying));
  assert.equal(
    code(() => readTensors(dir, 'w')),
    'CHECKPOINT_FORMAT',
  );
  writeFileSync(join(dir, 'w.json'), '{"format":"other"}');
  assert.equal(
    code(() => readTensors(dir, 'w')),
    'CHECKPOINT_FORMAT',
  );
  assert.equal(hasTensors(dir, 'w'), false);
  t.dispose();
  rmSync(dir, { recursive: true });
});

test('saveModelWeights/loadModelWeights restore a VGG16 exactly; a model of another shape is refused untouched', async () => {
  const dir = tempDir('exp-tensors-');
  const opts: BuildOptions = {
    imageSize: 32,
    nTags: 5,
    trainableBlocks: [5],
    head: { pooling: 'flatten', units: 8, activation: 'relu', initializer: 'he_uniform', dropout: 0.1 },
    seed: 1,
  };
  const a = buildModel(opts);
  const b = buildModel({ ...opts, seed: 2 });
  let t = Date.now();
  const manifest = await saveModelWeights(a, dir);
  const ms = Date.now() - t;
  console.log(`# saved ${(manifest.byteLength / 1e6).toFixed(1)} MB of weights in ${ms} ms`);
  t = Date.now();
  loadModelWeights(b, dir);
  console.log(`# loaded them in ${Date.now() - t} ms`);
  assert.equal(readFileSync(join(dir, manifest.data)).byteLength, 4 * a.countParams());
  a.weights.forEach((w, i) => assert.deepEqual(b.weights[i]!.read().dataSync(), w.read().dataSync(), w.originalName));

  // Its last layer differs, so a loader that assigned as it went would have changed the others.
  const other = buildModel({ ...opts, nTags: 6, seed: 3 });
  const first = (): Float32Array => other.getLayer('block1_conv1').getWeights()[0]!.dataSync() as Float32Array;
  const before = first().slice();
  const n = tf.memory().numTensors;
  assert.equal(
    code(() => loadModelWeights(other, dir)),
    'CHECKPOINT_MISMATCH',
  );
  assert.equal(tf.memory().numTensors, n, 'a refused load leaks nothing');
  assert.deepEqual(first(), before);
  [a, b, other].forEach((m) => m.dispose());
  rmSync(dir, { recursive: true });
});
