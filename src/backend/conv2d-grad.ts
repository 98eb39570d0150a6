/**
 * Conv2D gradients for the wasm backend, built on the kernels wasm runs fast (XNNPACK matmul
 * and convolution).
 *
 * tfjs-backend-wasm 4.22 has no `Conv2DBackpropFilter`, so no conv layer can train there, and
 * its `Conv2DBackpropInput` is a scalar C++ loop (~0.7 GFLOP/s against ~17 for its forward
 * conv), which would dominate a training step. `ensureWasmGradients()` registers both kernels
 * for 'wasm'; everything else VGG16 training needs (MaxPoolGrad, Step for the relu gradient,
 * Sum for the bias gradient, BatchMatMul for the head) is already there. (The head's gradient
 * matmuls are transposed, so they too take wasm's ~1 GFLOP/s scalar path, but they are ~1% of
 * a block5 step's work.)
 *
 * Both gradients are tfjs ops plus a JS column builder that reads x back, so they run on any
 * backend (cheaply on wasm and cpu); tests compare them with the cpu backend's own kernels.
 */
import * as tf from '@tensorflow/tfjs';
import { createRequire } from 'node:module';
import type { Conv2DBackpropFilterAttrs, Conv2DBackpropInputAttrs, KernelConfig, KernelFunc, TensorInfo } from '@tensorflow/tfjs';
import { convGeometry, im2colT, type ConvGeometry } from './im2col.js';

type Pad = Conv2DBackpropFilterAttrs['pad'];
type Rounding = Conv2DBackpropFilterAttrs['dimRoundingMode'];
type Shape4 = [number, number, number, number];

/** Upper bound on one im2col chunk, in floats (64 MiB). VGG16 block5 at batch 32 needs 9.4M, so
 * it runs as one matmul; block1 at 128x128 needs 9.4M per image and is chunked image by image. */
const COLS_BUDGET = 1 << 24;

/**
 * dL/dW of an NHWC conv2d with dilation 1: dW = im2col(x)^T · dy as one big matmul per chunk of
 * the batch. The columns are built already transposed ([kh*kw*inC, rows]) because wasm's matmul
 * only takes its XNNPACK path when neither operand is transposed (otherwise ~1 GFLOP/s).
 *
 * @param x input [N, H, W, inC]
 * @param dy gradient of the conv output [N, outH, outW, outC]
 * @param filterShape [kh, kw, inC, outC]
 * @param opts.colsBudget largest im2col chunk in floats (default 2^24); at least one image
 * @returns dW [kh, kw, inC, outC]
 */
export function conv2dFilterGrad(
  x: tf.Tensor4D,
  dy: tf.Tensor4D,
  filterShape: Shape4,
  strides: number | [number, number],
  pad: Pad,
  dimRoundingMode?: Rounding,
  opts: { colsBudget?: number } = {},
): tf.Tensor4D {
  const g = convGeometry(x.shape, filterShape, strides, pad, dimRoundingMode);
  const [kh, kw, inC, outC] = filterShape;
  const n = x.shape[0];
  const plane = g.outH * g.outW;
  const step = Math.max(1, Math.floor((opts.colsBudget ?? COLS_BUDGET) / (kh * kw * inC * plane)));
  return tf.tidy(() => {
    let dw: tf.Tensor2D | undefined;
    for (let b0 = 0; b0 < n; b0 += step) {
      const b = Math.min(step, n - b0);
      const part = tf.tidy(() => {
        const xs = b === n ? x : tf.slice(x, [b0, 0, 0, 0], [b, -1, -1, -1]);
        const ys = b === n ? dy : tf.slice(dy, [b0, 0, 0, 0], [b, -1, -1, -1]);
        // Channel-major copy so that im2col's runs are contiguous; wasm's Transpose is native.
        const cols = columns(tf.transpose(xs, [3, 0, 1, 2]), b, g, [kh * kw * inC, b * plane]);
        return tf.matMul(cols, tf.reshape(ys, [b * plane, outC])) as tf.Tensor2D;
      });
      dw = dw === undefined ? part : tf.add<tf.Tensor2D>(dw, part);
    }
    return tf.reshape(dw!, filterShape);
  });
}

/** What `columns` uses of the wasm backend when it is the active one (checked, not assumed). */
interface HeapBackend {
  makeOutput(shape: number[], dtype: 'float32'): TensorInfo;
  typedArrayFromHeap(t: TensorInfo): Float32Array;
}

/**
 * The im2col matrix as a tensor, from x in [inC, n, H, W] layout. On wasm it is read from and
 * written straight into wasm's heap: a JS array plus upload costs a 38 MB allocation, its page
 * faults and two copies (about half of the column time at block5). Elsewhere, or if wasm's
 * internals change, plain dataSync and upload.
 */
function columns(xt: tf.Tensor4D, n: number, g: ConvGeometry, shape: [number, number]): tf.Tensor2D {
  const be = tf.backend() as unknown as Partial<HeapBackend>;
  if (tf.getBackend() === 'wasm' && typeof be.makeOutput === 'function' && typeof be.typedArrayFromHeap === 'function') {
    const info = be.makeOutput(shape, 'float32');
    const t = tf.engine().makeTensorFromTensorInfo(info) as tf.Tensor2D;
    // Views are taken after the allocation, which may grow wasm memory and detach older views.
    im2colT(be.typedArrayFromHeap(xt), n, g, be.typedArrayFromHeap(info));
    return t;
  }
  return tf.tensor2d(im2colT(xt.dataSync() as Float32Array, n, g), shape);
}

/**
 * dL/dx of an NHWC conv2d with dilation 1, as a forward convolution (which wasm runs through
 * XNNPACK): dx = conv2d(pad(dilate(dy)), rot180(W) with in/out channels swapped, 'valid').
 *
 * @param inputShape [N, H, W, inC] of the conv's input
 * @param dy [N, outH, outW, outC]
 * @param filter [kh, kw, inC, outC]
 * @returns dx [N, H, W, inC]
 */
export function conv2dInputGrad(
  inputShape: Shape4,
  dy: tf.Tensor4D,
  filter: tf.Tensor4D,
  strides: number | [number, number],
  pad: Pad,
  dimRoundingMode?: Rounding,
): tf.Tensor4D {
  const g = convGeometry(inputShape, filter.shape, strides, pad, dimRoundingMode);
  const [n, h, w] = inputShape;
  const outC = dy.shape[3];
  return tf.tidy(() => {
    let d: tf.Tensor4D = dy;
    if (g.sh > 1 || g.sw > 1) {
      // Put stride-1 zeros between dy's rows and columns, so the strided conv becomes a unit one.
      const spread = tf.pad(tf.reshape(dy, [n, g.outH, 1, g.outW, 1, outC]), [
        [0, 0],
        [0, 0],
        [0, g.sh - 1],
        [0, 0],
        [0, g.sw - 1],
        [0, 0],
      ]);
      d = tf.reshape(spread, [n, g.outH * g.sh, g.outW * g.sw, outC]);
    }
    // dx[y] = sum_i' P[y + i'] · Wflip[i'] with P = dy shifted down by kh-1-top: pad or crop
    // dy so it is exactly H+kh-1 rows (W+kw-1 columns) tall, then a 'valid' conv gives H x W.
    const t = g.kh - 1 - g.top,
      l = g.kw - 1 - g.left;
    const bottom = h + g.kh - 1 - t - d.shape[1],
      right = w + g.kw - 1 - l - d.shape[2];
    if (t > 0 || l > 0 || bottom > 0 || right > 0) {
      d = tf.pad(d, [
        [0, 0],
        [Math.max(t, 0), Math.max(bottom, 0)],
        [Math.max(l, 0), Math.max(right, 0)],
        [0, 0],
      ]);
    }
    if (t < 0 || l < 0 || bottom < 0 || right < 0) {
      d = tf.slice(d, [0, Math.max(-t, 0), Math.max(-l, 0), 0], [n, h + g.kh - 1, w + g.kw - 1, outC]);
    }
    const flipped = tf.transpose(tf.reverse(filter, [0, 1]), [0, 1, 3, 2]);
    return tf.conv2d(d, flipped as tf.Tensor4D, 1, 'valid');
  });
}

/** Kernel inputs are Tensors when they come from ops; wrap a bare TensorInfo just in case. */
function asTensor4D(info: TensorInfo | undefined): tf.Tensor4D {
  if (info === undefined) throw new Error('conv2d gradient kernel called without an input (bug in exp)');
  return (info instanceof tf.Tensor ? info : tf.engine().makeTensorFromTensorInfo(info)) as tf.Tensor4D;
}

const toNHWC = (t: tf.Tensor4D): tf.Tensor4D => tf.transpose(t, [0, 2, 3, 1]);

// Kernels may return a Tensor (the engine keeps it as is); tidy frees every intermediate.
const filterGradKernel: KernelFunc = ({ inputs, attrs }) => {
  const a = attrs as unknown as Conv2DBackpropFilterAttrs;
  return tf.tidy(() => {
    const nchw = a.dataFormat === 'NCHW';
    const x = asTensor4D(inputs.x),
      dy = asTensor4D(inputs.dy);
    return conv2dFilterGrad(nchw ? toNHWC(x) : x, nchw ? toNHWC(dy) : dy, a.filterShape, a.strides, a.pad, a.dimRoundingMode);
  });
};

const inputGradKernel: KernelFunc = ({ inputs, attrs }) => {
  const a = attrs as unknown as Conv2DBackpropInputAttrs;
  return tf.tidy(() => {
    const dy = asTensor4D(inputs.dy),
      filter = asTensor4D(inputs.filter);
    if (a.dataFormat !== 'NCHW') return conv2dInputGrad(a.inputShape, dy, filter, a.strides, a.pad, a.dimRoundingMode);
    const [n, c, h, w] = a.inputShape;
    const dx = conv2dInputGrad([n, h, w, c], toNHWC(dy), filter, a.strides, a.pad, a.dimRoundingMode);
    return tf.transpose(dx, [0, 3, 1, 2]);
  });
};

const SUPPLIED: readonly KernelConfig[] = [
  { kernelName: tf.Conv2DBackpropFilter, backendName: 'wasm', kernelFunc: filterGradKernel },
  { kernelName: tf.Conv2DBackpropInput, backendName: 'wasm', kernelFunc: inputGradKernel },
];
const stock = new Map<string, KernelConfig>();

/**
 * Registers the Conv2D gradient kernels above for the wasm backend. Idempotent; safe to call
 * before or after the wasm backend initialises. Replaces wasm's own (slow) Conv2DBackpropInput;
 * `stockWasmKernel` keeps it for benchmarks. Returns the kernel names now supplied by exp.
 */
export function ensureWasmGradients(): string[] {
  // wasm registers its kernels when first loaded, and a later load would overwrite ours
  // (registerKernel replaces with a warning), so load it first. Synchronously, through require:
  // it is CommonJS, so this is the same instance an ESM import gets. Not a top-level import,
  // because loading wasm makes it the highest-priority backend, and then any tf op run before
  // a backend is chosen throws "backend 'wasm' has not yet been initialized".
  createRequire(import.meta.url)('@tensorflow/tfjs-backend-wasm');
  for (const k of SUPPLIED) {
    const current = tf.getKernel(k.kernelName, k.backendName);
    if (current?.kernelFunc === k.kernelFunc) continue;
    if (current !== undefined) {
      stock.set(k.kernelName, current);
      tf.unregisterKernel(k.kernelName, k.backendName);
    }
    tf.registerKernel(k);
  }
  return SUPPLIED.map((k) => k.kernelName);
}

/** The wasm kernel that `ensureWasmGradients` replaced under this name, if any (for benchmarks). */
export function stockWasmKernel(kernelName: string): KernelConfig | undefined {
  return stock.get(kernelName);
}
