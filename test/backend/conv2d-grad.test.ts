// The wasm Conv2D gradients (ours) against the cpu backend's own kernels, on a grid of shapes,
// and a small conv net trained on wasm: same losses as on cpu, no tensor leaks.
import { before, test } from 'node:test';
import assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs';
import seedrandom from 'seedrandom';
import { selectBackend } from '../../src/backend/select.js';
import { conv2dFilterGrad, conv2dInputGrad, ensureWasmGradients } from '../../src/backend/conv2d-grad.js';

type Shape4 = [number, number, number, number];
type Pad = 'same' | 'valid' | [[0, 0], [number, number], [number, number], [0, 0]];

/** Seeded N(0,1)-ish values, the same whichever backend uploads them. */
function values(n: number, seed: string): Float32Array {
  const rng = seedrandom(seed);
  return Float32Array.from({ length: n }, () => rng() + rng() + rng() - 1.5);
}

/** max |a - b| relative to max |b|: one number per tensor, robust to entries near zero. */
function relErr(a: ArrayLike<number>, b: ArrayLike<number>): number {
  assert.equal(a.length, b.length);
  let diff = 0,
    scale = 0;
  for (let i = 0; i < a.length; i++) {
    diff = Math.max(diff, Math.abs(a[i]! - b[i]!));
    scale = Math.max(scale, Math.abs(b[i]!));
  }
  return diff / (scale || 1);
}

interface Case {
  x: Shape4;
  f: Shape4;
  s: number | [number, number];
  pad: Pad;
}
const CASES: Case[] = [
  { x: [2, 7, 5, 3], f: [3, 3, 3, 4], s: 1, pad: 'same' },
  { x: [2, 7, 5, 3], f: [3, 3, 3, 4], s: 2, pad: 'same' },
  { x: [3, 9, 6, 5], f: [3, 2, 5, 2], s: 2, pad: 'valid' },
  { x: [1, 5, 5, 1], f: [1, 1, 1, 3], s: 1, pad: 'valid' },
  { x: [2, 8, 8, 4], f: [5, 5, 4, 3], s: 3, pad: 'same' },
  { x: [4, 6, 6, 16], f: [3, 3, 16, 8], s: 1, pad: 'same' },
  { x: [2, 9, 7, 6], f: [3, 3, 6, 5], s: [2, 1], pad: 'valid' },
  {
    x: [3, 5, 6, 2],
    f: [3, 3, 2, 3],
    s: 1,
    pad: [
      [0, 0],
      [1, 2],
      [0, 1],
      [0, 0],
    ],
  },
  { x: [2, 4, 4, 32], f: [3, 3, 32, 32], s: 1, pad: 'same' },
];
const label = (c: Case): string => `x ${c.x.join('x')} f ${c.f.join('x')} stride ${String(c.s)} ${typeof c.pad === 'string' ? c.pad : JSON.stringify(c.pad)}`;

/** dL/dx and dL/dW of sum(conv2d(x, W) * up) through tf.grads on the current backend. */
function grads(c: Case, xv: Float32Array, wv: Float32Array, uv: Float32Array): [Float32Array, Float32Array] {
  return tf.tidy(() => {
    const x = tf.tensor4d(xv, c.x),
      w = tf.tensor4d(wv, c.f);
    const outShape = tf.conv2d(x, w, c.s, c.pad).shape;
    const up = tf.tensor(uv, outShape);
    const [dx, dw] = tf.grads((a: tf.Tensor, b: tf.Tensor) => tf.sum(tf.mul(tf.conv2d(a as tf.Tensor4D, b as tf.Tensor4D, c.s, c.pad), up)))([x, w]);
    return [dx!.dataSync() as Float32Array, dw!.dataSync() as Float32Array];
  });
}

async function onBackend<T>(name: 'cpu' | 'wasm', f: () => T): Promise<T> {
  await tf.setBackend(name);
  return f();
}

before(async () => {
  await selectBackend('wasm');
});

for (const c of CASES) {
  test(`wasm conv2d gradients match cpu: ${label(c)}`, async () => {
    const outShape = tf.tidy(() => tf.conv2d(tf.zeros(c.x) as tf.Tensor4D, tf.zeros(c.f) as tf.Tensor4D, c.s, c.pad).shape);
    const xv = values(
        c.x.reduce((a, b) => a * b),
        'x',
      ),
      wv = values(
        c.f.reduce((a, b) => a * b),
        'w',
      );
    const uv = values(
      outShape.reduce((a, b) => a * b),
      'up',
    );
    const [cdx, cdw] = await onBackend('cpu', () => grads(c, xv, wv, uv));
    const before = tf.memory().numTensors;
    const [wdx, wdw] = await onBackend('wasm', () => grads(c, xv, wv, uv));
    assert.equal(tf.memory().numTensors, before, 'no tensors leak');
    assert.ok(relErr(wdw, cdw) < 1e-4, `dW rel err ${relErr(wdw, cdw)}`);
    assert.ok(relErr(wdx, cdx) < 1e-4, `dx rel err ${relErr(wdx, cdx)}`);
  });
}

test('the filter gradient is the same when the batch is split into uneven im2col chunks', async () => {
  await tf.setBackend('wasm');
  const x = tf.tensor4d(values(5 * 6 * 6 * 4, 'cx'), [5, 6, 6, 4]),
    dy = tf.tensor4d(values(5 * 6 * 6 * 3, 'cy'), [5, 6, 6, 3]);
  const whole = conv2dFilterGrad(x, dy, [3, 3, 4, 3], 1, 'same');
  // 2 images' worth of columns per chunk: chunks of 2, 2 and 1.
  const chunked = conv2dFilterGrad(x, dy, [3, 3, 4, 3], 1, 'same', undefined, { colsBudget: 2 * 9 * 4 * 36 });
  assert.ok(relErr(chunked.dataSync(), whole.dataSync()) < 1e-5);
  tf.dispose([x, dy, whole, chunked]);
});

test('the gradient functions also run on the cpu backend (the path without wasm heap access)', async () => {
  const c: Case = { x: [2, 7, 6, 3], f: [3, 3, 3, 4], s: 2, pad: 'same' };
  const xv = values(2 * 7 * 6 * 3, 'px'),
    wv = values(3 * 3 * 3 * 4, 'pw'),
    uv = values(2 * 4 * 3 * 4, 'pu');
  await tf.setBackend('cpu');
  const [cdx, cdw] = grads(c, xv, wv, uv);
  const [dx, dw] = tf.tidy(() => {
    const up = tf.tensor4d(uv, [2, 4, 3, 4]);
    return [conv2dInputGrad(c.x, up, tf.tensor4d(wv, c.f), c.s, c.pad).dataSync(), conv2dFilterGrad(tf.tensor4d(xv, c.x), up, c.f, c.s, c.pad).dataSync()];
  });
  assert.ok(relErr(dw, cdw) < 1e-5 && relErr(dx, cdx) < 1e-5);
});

test('NCHW kernels agree with cpu (the kernels, called directly)', async () => {
  const x = values(2 * 3 * 7 * 6, 'nx'),
    dy = values(2 * 4 * 7 * 6, 'ny'),
    w = values(3 * 3 * 3 * 4, 'nw');
  const run = (): [Float32Array, Float32Array] =>
    tf.tidy(() => {
      const attrs: tf.NamedAttrMap = { strides: 1, pad: 'same', dataFormat: 'NCHW' };
      const dw = tf
        .engine()
        .runKernel(
          'Conv2DBackpropFilter',
          { x: tf.tensor4d(x, [2, 3, 7, 6]), dy: tf.tensor4d(dy, [2, 4, 7, 6]) },
          { ...attrs, filterShape: [3, 3, 3, 4] },
        ) as tf.Tensor;
      const dx = tf
        .engine()
        .runKernel(
          'Conv2DBackpropInput',
          { dy: tf.tensor4d(dy, [2, 4, 7, 6]), filter: tf.tensor4d(w, [3, 3, 3, 4]) },
          { ...attrs, inputShape: [2, 3, 7, 6] },
        ) as tf.Tensor;
      return [dw.dataSync() as Float32Array, dx.dataSync() as Float32Array];
    });
  const [cdw, cdx] = await onBackend('cpu', run);
  const [wdw, wdx] = await onBackend('wasm', run);
  assert.ok(relErr(wdw, cdw) < 1e-4, `dW rel err ${relErr(wdw, cdw)}`);
  assert.ok(relErr(wdx, cdx) < 1e-4, `dx rel err ${relErr(wdx, cdx)}`);
});

test('ensureWasmGradients is idempotent', () => {
  const a = tf.getKernel('Conv2DBackpropFilter', 'wasm');
  assert.deepEqual(ensureWasmGradients(), ['Conv2DBackpropFilter', 'Conv2DBackpropInput']);
  assert.equal(tf.getKernel('Conv2DBackpropFilter', 'wasm'), a);
});

/** conv-relu-pool-conv-relu-dense-sigmoid on 8x8x3 images, seeded; returns the loss per step. */
async function trainTinyNet(steps: number, onStep: (before: number, after: number) => void): Promise<number[]> {
  const init = (seed: number) => tf.initializers.glorotUniform({ seed });
  const model = tf.sequential({
    layers: [
      tf.layers.conv2d({ inputShape: [8, 8, 3], filters: 6, kernelSize: 3, padding: 'same', activation: 'relu', kernelInitializer: init(1) }),
      tf.layers.maxPooling2d({ poolSize: 2 }),
      tf.layers.conv2d({ filters: 8, kernelSize: 3, padding: 'valid', activation: 'relu', kernelInitializer: init(2) }),
      tf.layers.flatten(),
      tf.layers.dense({ units: 2, activation: 'sigmoid', kernelInitializer: init(3) }),
    ],
  });
  model.compile({ optimizer: tf.train.adam(0.01), loss: 'binaryCrossentropy' });
  const x = tf.tensor4d(values(16 * 8 * 8 * 3, 'train-x'), [16, 8, 8, 3]);
  const y = tf.tensor2d(
    Array.from(values(16 * 2, 'train-y'), (v) => (v > 0 ? 1 : 0)),
    [16, 2],
  );
  const losses: number[] = [];
  for (let i = 0; i < steps; i++) {
    const before = tf.memory().numTensors;
    losses.push((await model.trainOnBatch(x, y)) as number);
    onStep(before, tf.memory().numTensors);
  }
  tf.dispose([x, y]);
  model.dispose();
  return losses;
}

test('a small conv net trains on wasm: the loss falls, as on cpu, and no step leaks tensors', async () => {
  await tf.setBackend('cpu');
  const cpu = await trainTinyNet(6, () => {});
  await tf.setBackend('wasm');
  const counts: Array<[number, number]> = [];
  const wasm = await trainTinyNet(6, (b, a) => counts.push([b, a]));
  assert.ok(wasm[5]! < wasm[0]! * 0.9, `loss ${wasm.join(' -> ')}`);
  assert.ok(relErr(wasm, cpu) < 1e-3, `wasm ${wasm.join(' ')} vs cpu ${cpu.join(' ')}`);
  // Step 1 creates Adam's moment slots; from then on every step must give back what it takes.
  for (const [b, a] of counts.slice(1)) assert.equal(a, b, `numTensors ${b} -> ${a}`);
});
