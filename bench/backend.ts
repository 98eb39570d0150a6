/**
 * Conv2D gradients on the wasm backend at VGG16 block5 size (x [32, 8, 8, 512], 3x3 'same',
 * 512 filters: 9.66 GFLOP per op), against the forward conv and the naive alternatives.
 * Takes about 20 s on one idle core, half of it in the naive row.
 *
 * Times are the best of `reps` runs after one warm-up (the naive and stock rows run once, cold:
 * they are 10-20x slower, and timing them longer would not change the story). `cpuMs` is this
 * process's CPU time, a steadier number than wall time on a shared machine (wasm is one thread).
 */
import * as tf from '@tensorflow/tfjs';
import { selectBackend } from '../src/backend/select.js';
import { conv2dFilterGrad, conv2dInputGrad, stockWasmKernel } from '../src/backend/conv2d-grad.js';

export interface Row {
  name: string;
  /** [N, H, W, inC] -> outC */
  shape: string;
  ms: number;
  cpuMs: number;
  /** From wall time. */
  gflops: number;
  reps: number;
  note?: string;
}

const flops = (n: number, h: number, w: number, c: number, co: number): number => 2 * n * h * w * 9 * c * co;

interface Timing {
  ms: number;
  cpuMs: number;
}

function time(reps: number, warm: boolean, f: () => tf.Tensor, keepLast = false): Timing & { out?: tf.Tensor } {
  if (warm) f().dispose();
  let ms = Infinity,
    cpuMs = Infinity,
    out: tf.Tensor | undefined;
  for (let r = 0; r < reps; r++) {
    const c0 = process.cpuUsage(),
      t0 = performance.now();
    out = f();
    out.dataSync(); // wasm is synchronous, but read anyway so that no backend can cheat
    const c = process.cpuUsage(c0);
    ms = Math.min(ms, performance.now() - t0);
    cpuMs = Math.min(cpuMs, (c.user + c.system) / 1000);
    if (!keepLast || r < reps - 1) out.dispose();
  }
  return { ms, cpuMs, ...(keepLast ? { out } : {}) };
}

/** The textbook version: im2col with tf ops, then im2col^T · dy. wasm runs a transposed matmul
 * in a scalar loop, and its Slice/Concat copy row by row, hence the contrast. */
function naiveFilterGrad(x: tf.Tensor4D, dy: tf.Tensor4D): tf.Tensor4D {
  const [n, h, w, c] = x.shape,
    co = dy.shape[3];
  return tf.tidy(() => {
    const xp = tf.pad(x, [
      [0, 0],
      [1, 1],
      [1, 1],
      [0, 0],
    ]);
    const taps: tf.Tensor4D[] = [];
    for (let i = 0; i < 3; i++) for (let j = 0; j < 3; j++) taps.push(tf.slice(xp, [0, i, j, 0], [n, h, w, c]));
    const cols = tf.reshape(tf.concat(taps, 3), [n * h * w, 9 * c]);
    return tf.reshape(tf.matMul(cols, tf.reshape(dy, [n * h * w, co]), true, false), [3, 3, c, co]);
  });
}

/** Runs wasm's own Conv2DBackpropInput (a scalar loop), which ensureWasmGradients replaced. */
function stockInputGrad(dy: tf.Tensor4D, filter: tf.Tensor4D, inputShape: number[]): tf.Tensor {
  const k = stockWasmKernel('Conv2DBackpropInput');
  if (k === undefined) throw new Error('no stock Conv2DBackpropInput to compare with');
  const out = k.kernelFunc({ inputs: { dy, filter }, backend: tf.backend(), attrs: { strides: 1, pad: 'same', dataFormat: 'NHWC', inputShape } });
  return tf.engine().makeTensorFromTensorInfo(Array.isArray(out) ? out[0]! : out);
}

/** Times the rows above on wasm; prints nothing (the bench runner prints the table). */
export async function benchConvGrad(): Promise<Row[]> {
  await selectBackend('wasm');
  const [n, h, w, c, co] = [32, 8, 8, 512, 512];
  const shape = `[${n},${h},${w},${c}] -> ${co}`;
  const f = flops(n, h, w, c, co);
  const x = tf.randomNormal([n, h, w, c], 0, 1, 'float32', 1) as tf.Tensor4D;
  const dy = tf.randomNormal([n, h, w, co], 0, 1, 'float32', 2) as tf.Tensor4D;
  const filter = tf.randomNormal([3, 3, c, co], 0, 0.05, 'float32', 3) as tf.Tensor4D;
  const rows: Row[] = [];
  const add = (name: string, rowShape: string, fl: number, reps: number, t: Timing, note?: string): void => {
    rows.push({
      name,
      shape: rowShape,
      ms: Math.round(t.ms),
      cpuMs: Math.round(t.cpuMs),
      gflops: +(fl / t.ms / 1e6).toFixed(2),
      reps,
      ...(note ? { note } : {}),
    });
  };
  try {
    // A fresh filter per call, as in training: XNNPACK packs the weights each time they change.
    add(
      'conv2d forward (wasm XNNPACK)',
      shape,
      f,
      3,
      time(3, true, () => tf.tidy(() => tf.conv2d(x, tf.mul(filter, 1) as tf.Tensor4D, 1, 'same'))),
    );
    add(
      'filter grad: exp im2col + matmul',
      shape,
      f,
      3,
      time(3, true, () => conv2dFilterGrad(x, dy, [3, 3, c, co], 1, 'same')),
    );
    const naive = time(1, false, () => naiveFilterGrad(x, dy), true);
    const ours = conv2dFilterGrad(x, dy, [3, 3, c, co], 1, 'same');
    const diff = tf.tidy(() => tf.div(tf.max(tf.abs(tf.sub(naive.out!, ours))), tf.max(tf.abs(naive.out!))).dataSync()[0]!);
    tf.dispose([ours, naive.out!]);
    add('filter grad: naive im2col^T (transposeA matmul)', shape, f, 1, naive, `max rel diff vs exp ${diff.toExponential(1)}`);
    add(
      'input grad: exp (conv2d of flipped filter)',
      shape,
      f,
      3,
      time(3, true, () => conv2dInputGrad([n, h, w, c], dy, filter, 1, 'same')),
    );
    // Stock dx is a scalar loop at ~0.7 GFLOP/s: batch 8 keeps it to a few seconds.
    const dy8 = tf.slice(dy, [0, 0, 0, 0], [8, -1, -1, -1]);
    add(
      'input grad: stock wasm kernel',
      `[8,${h},${w},${c}] -> ${co}`,
      flops(8, h, w, c, co),
      1,
      time(1, false, () => stockInputGrad(dy8, filter, [8, h, w, c])),
      'batch 8 to bound its time',
    );
    dy8.dispose();
  } finally {
    tf.dispose([x, dy, filter]);
  }
  return rows;
}
