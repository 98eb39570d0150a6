// The one-kernel oneDNN convolution on native TensorFlow (src/backend/native-kernels.ts): installed
// wherever exp built the addon, and it computes what conv2d + bias + activation compute, for
// every case it takes, while the cases it leaves to tfjs-node's own kernel still work.
import { before, test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { selectBackend, type BackendInfo } from '../../src/backend/select.js';
import { fusedConvInstalled } from '../../src/backend/native-kernels.js';

let info: BackendInfo | undefined;
let skip: string | false = false;

before(async () => {
  try {
    info = await selectBackend('tensorflow');
  } catch {
    skip = 'the native backend is not built here';
  }
});

/** Whether the loaded tfjs-node addon was compiled by scripts/build-native-backend.sh (patched binding). */
function patchedBinding(): boolean {
  const pkg = info?.version.includes('tfjs-node-gpu') ? '@tensorflow/tfjs-node-gpu' : '@tensorflow/tfjs-node';
  const dir = dirname(createRequire(import.meta.url).resolve(`${pkg}/package.json`));
  return readFileSync(join(dir, 'binding', 'tfjs_backend.cc'), 'utf8').includes('// exp: list-valued string and type attributes');
}

test('exp-built native CPU backends run conv + bias + activation as one oneDNN kernel', (t) => {
  if (skip) return t.skip(skip);
  if (!patchedBinding()) return t.skip("tfjs-node's own (unpatched) addon: the stock kernel is kept");
  assert.equal(info!.fusedConv, true);
  assert.equal(fusedConvInstalled(), true);
});

/** Seeded values in [-1, 1). */
const rand = (shape: number[], seed: number): tf.Tensor => tf.randomUniform(shape, -1, 1, 'float32', seed);

test('the fused kernel agrees with conv2d, add and the activation, op by op', (t) => {
  if (skip) return t.skip(skip);
  type Act = 'linear' | 'relu' | 'relu6' | 'elu' | 'leakyrelu' | 'prelu' | 'sigmoid';
  const cases: { x: number[]; f: number[]; s: number | [number, number]; pad: 'same' | 'valid'; d?: number; act: Act; bias?: boolean }[] = [
    { x: [2, 9, 7, 3], f: [3, 3, 3, 8], s: 1, pad: 'same', act: 'relu' },
    { x: [2, 9, 7, 3], f: [3, 3, 3, 8], s: 1, pad: 'same', act: 'linear' },
    { x: [2, 9, 7, 3], f: [3, 2, 3, 5], s: 2, pad: 'valid', act: 'relu6' },
    { x: [1, 11, 11, 4], f: [3, 3, 4, 4], s: 1, pad: 'same', d: 2, act: 'elu' },
    { x: [1, 8, 8, 4], f: [1, 1, 4, 6], s: [2, 1], pad: 'same', act: 'leakyrelu' },
    // Left to tfjs-node's kernel: no bias, prelu, an activation oneDNN is not asked for.
    { x: [2, 6, 6, 3], f: [3, 3, 3, 4], s: 1, pad: 'same', act: 'relu', bias: false },
    { x: [2, 6, 6, 3], f: [3, 3, 3, 4], s: 1, pad: 'same', act: 'prelu' },
    { x: [2, 6, 6, 3], f: [3, 3, 3, 4], s: 1, pad: 'same', act: 'sigmoid' },
  ];
  const before = tf.memory().numTensors;
  for (const [i, c] of cases.entries()) {
    tf.tidy(() => {
      const x = rand(c.x, i) as tf.Tensor4D;
      const filter = rand(c.f, 100 + i) as tf.Tensor4D;
      const bias = c.bias === false ? undefined : rand([c.f[3]!], 200 + i);
      const alpha = c.act === 'prelu' ? rand([c.f[3]!], 300 + i) : undefined;
      const fused = tf.fused.conv2d({
        x,
        filter,
        strides: c.s,
        pad: c.pad,
        dilations: c.d ?? 1,
        bias,
        activation: c.act,
        preluActivationWeights: alpha,
        leakyreluAlpha: 0.1,
      });
      let ref: tf.Tensor = tf.conv2d(x, filter, c.s, c.pad, 'NHWC', c.d ?? 1);
      if (bias) ref = tf.add(ref, bias);
      const act: Record<Act, (v: tf.Tensor) => tf.Tensor> = {
        linear: (v) => v,
        relu: tf.relu,
        relu6: tf.relu6,
        elu: tf.elu,
        leakyrelu: (v) => tf.leakyRelu(v, 0.1),
        prelu: (v) => tf.prelu(v, alpha!),
        sigmoid: tf.sigmoid,
      };
      ref = act[c.act](ref);
      assert.deepEqual(fused.shape, ref.shape, JSON.stringify(c));
      const err = tf.max(tf.abs(tf.sub(fused, ref))).dataSync()[0]!;
      assert.ok(err < 1e-5, `${JSON.stringify(c)}: max |diff| ${err}`);
    });
  }
  assert.equal(tf.memory().numTensors, before, 'no tensor leaked');
});

test("relu's gradient (ReluGrad on native) is dy where the input was positive, else 0", (t) => {
  if (skip) return t.skip(skip);
  const x = tf.tensor1d([-2, -0.5, 0, 0.5, 3]);
  const w = tf.tensor1d([1, 2, 3, 4, 5]);
  const g = tf.grad((v: tf.Tensor) => tf.sum(tf.mul(tf.relu(v), w)))(x);
  assert.deepEqual(Array.from(g.dataSync()), [0, 0, 0, 4, 5]);
  tf.dispose([x, w, g]);
});
