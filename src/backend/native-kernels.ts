/**
 * Kernels exp installs on native TensorFlow, where tfjs-node's own run as several eager ops.
 *
 * Conv2D + BiasAdd + activation as ONE oneDNN kernel (CPU). tfjs-layers asks for `FusedConv2D`
 * (conv, bias, relu) for every VGG16 conv layer, but tfjs-node's kernel runs it as three eager
 * ops: Conv2D (which libtensorflow's eager rewrite sends to oneDNN), then Add and Relu, each
 * reading and writing the whole activation (at 128x128, batch 128, block1's is 512 MiB) into
 * freshly allocated, page-faulted memory. Keras gets the three as one oneDNN convolution with
 * post-ops, because its graph optimiser rewrites Conv2D+BiasAdd+Relu to `_MklNativeFusedConv2D`.
 * Eager TensorFlow never does that rewrite, so this module calls that op itself. Measured at
 * block1_conv2's shape (128x64x64x64, 3x3x64): 128 ms unfused, 79 ms fused, 77 ms for the Conv2D
 * alone; outputs identical. The op is internal to TensorFlow, so nothing is assumed: it is
 * installed only when it runs on a small case and agrees with tfjs-node's own kernel. It needs
 * list-valued string (and on TensorFlow 2.20 type) attributes, which the stock tfjs-node binding
 * cannot pass; scripts/build-native-backend.sh adds them (a binding from tfjs-node's own download lacks it, and
 * keeps the stock kernel). GPU devices keep the stock kernel: the oneDNN op is CPU-only.
 * Gradients are unchanged: tfjs computes FusedConv2D's gradient from the output with its own ops.
 *
 * Relu's gradient as TensorFlow's ReluGrad (CPU and GPU): tfjs's is mul(dy, step(x)), and
 * tfjs-node runs step() as four ops (IsNan, Fill, Greater, Select). Other backends keep that.
 */
import * as tf from '@tensorflow/tfjs';
import type { FusedConv2DAttrs, FusedConv2DInputs, KernelConfig, KernelFunc } from '@tensorflow/tfjs';
import { nativeBackend, nativeOp, opErrorMessage } from './native-op.js';

/** TensorFlow's name for each tfjs fused activation that oneDNN applies as a post-op. */
const POST_OP: Partial<Record<NonNullable<FusedConv2DAttrs['activation']>, string>> = {
  relu: 'Relu',
  relu6: 'Relu6',
  elu: 'Elu',
  leakyrelu: 'LeakyRelu',
};

let stockKernel: KernelConfig | undefined;
/** TensorFlow 2.20's op types its bias input with a `TArgs` list attribute; 2.13's has none (the probe finds out). */
let argTypes = false;
let installed: { ok: true } | { ok: false; reason: string } | undefined;

const pair = (v: number | [number, number]): [number, number] => (typeof v === 'number' ? [v, v] : v);

/** The fused op for these inputs, or undefined where tfjs-node's own kernel must run it. */
function fusedOp(inputs: FusedConv2DInputs, attrs: FusedConv2DAttrs): tf.Tensor | undefined {
  const { x, filter, bias, preluActivationWeights } = inputs;
  const { strides, pad, dataFormat, dilations, dimRoundingMode, activation, leakyreluAlpha } = attrs;
  const act = activation ?? 'linear';
  const post = act === 'linear' ? [] : POST_OP[act] && [POST_OP[act]];
  const fits =
    bias != null &&
    bias.shape.length === 1 &&
    bias.shape[0] === filter.shape[3] &&
    preluActivationWeights == null &&
    post !== undefined &&
    dataFormat === 'NHWC' &&
    (pad === 'same' || pad === 'valid') &&
    dimRoundingMode == null &&
    x.dtype === 'float32' &&
    filter.dtype === 'float32' &&
    bias.dtype === 'float32';
  if (!fits) return undefined;
  const [sh, sw] = pair(strides);
  const [dh, dw] = pair(dilations ?? 1);
  return nativeOp(
    '_MklNativeFusedConv2D',
    [
      { name: 'T', type: 'float32' },
      { name: 'num_args', int: 1 },
      ...(argTypes ? [{ name: 'TArgs', types: ['float32' as const] }] : []),
      { name: 'strides', int: [1, sh, sw, 1] },
      { name: 'padding', string: pad === 'same' ? 'SAME' : 'VALID' },
      { name: 'data_format', string: 'NHWC' },
      { name: 'dilations', int: [1, dh, dw, 1] },
      { name: 'fused_ops', string: ['BiasAdd', ...post] },
      { name: 'leakyrelu_alpha', float: leakyreluAlpha ?? 0.2 },
      // Selects the oneDNN kernel registered under this label (what TensorFlow's graph rewrite sets).
      { name: '_kernel', string: 'MklNameChangeOp' },
    ],
    [x, filter, bias],
  );
}

const fusedKernel: KernelFunc = (args) => {
  try {
    const out = fusedOp(args.inputs as unknown as FusedConv2DInputs, args.attrs as unknown as FusedConv2DAttrs);
    if (out !== undefined) return out;
  } catch {
    // A case the probe did not cover that oneDNN refuses: tfjs-node's own kernel computes it.
  }
  return stockKernel!.kernelFunc(args);
};

/**
 * Installs the kernels above for the 'tensorflow' backend, which must be the current one, where
 * they work here. Idempotent. For the fused convolution, returns whether it is installed, or why
 * not (for `exp backends` and run.json).
 */
export function installFusedConv(): { ok: true } | { ok: false; reason: string } {
  if (installed !== undefined) return installed;
  const be = nativeBackend();
  if (be === undefined) return { ok: false, reason: 'not the native backend' };
  installReluGrad();
  if (be.isUsingGpuDevice === true) return (installed = { ok: false, reason: 'GPU device: the stock kernel runs there' });
  const stock = tf.getKernel('FusedConv2D', 'tensorflow');
  if (stock === undefined) return (installed = { ok: false, reason: 'tfjs-node has no FusedConv2D kernel' });
  const reason = probe(stock);
  if (reason !== undefined) return (installed = { ok: false, reason });
  stockKernel = stock;
  tf.unregisterKernel('FusedConv2D', 'tensorflow');
  tf.registerKernel({ kernelName: 'FusedConv2D', backendName: 'tensorflow', kernelFunc: fusedKernel });
  return (installed = { ok: true });
}

/** dy where the relu's input was positive, else 0: tfjs's own formula, or ReluGrad on the native backend. */
const reluGrad = (dy: tf.Tensor, x: tf.Tensor): tf.Tensor => {
  if (reluGradNative && x.dtype === 'float32' && dy.dtype === 'float32') {
    try {
      const g = nativeOp('ReluGrad', [{ name: 'T', type: 'float32' }], [dy, x]);
      if (g !== undefined) return g;
    } catch {
      reluGradNative = false; // not in this libtensorflow: the portable formula from now on
    }
  }
  return tf.mul(dy, tf.cast(tf.step(x), 'float32'));
};
let reluGradNative = true;

/** Replaces tfjs's Relu gradient (registered for every backend: off the native one it is tfjs's formula). */
function installReluGrad(): void {
  tf.registerGradient({ kernelName: 'Relu', inputsToSave: ['x'], gradFunc: (dy, saved) => ({ x: () => reluGrad(dy as tf.Tensor, saved[0]!) }) });
}

/** Whether the fused kernel is installed in this process. */
export function fusedConvInstalled(): boolean {
  return installed?.ok === true;
}

/** Runs the fused op and the stock kernel on one small case each of relu and linear: they must agree. */
function probe(stock: KernelConfig): string | undefined {
  const first = compare(stock);
  if (first === undefined || !first.includes("'TArgs'")) return first;
  argTypes = true;
  return compare(stock);
}

function compare(stock: KernelConfig): string | undefined {
  try {
    return tf.tidy(() => {
      const x = tf.tensor4d(
        Array.from({ length: 2 * 5 * 4 * 3 }, (_, i) => Math.sin(i)),
        [2, 5, 4, 3],
      );
      const filter = tf.tensor4d(
        Array.from({ length: 3 * 3 * 3 * 4 }, (_, i) => Math.cos(i)),
        [3, 3, 3, 4],
      );
      const bias = tf.tensor1d([0.5, -0.5, 0.25, -3]);
      for (const activation of ['relu', 'linear'] as const) {
        const attrs: FusedConv2DAttrs = {
          strides: 1,
          pad: 'same',
          dataFormat: 'NHWC',
          dilations: 1,
          dimRoundingMode: undefined as never,
          activation,
          leakyreluAlpha: 0.2,
        };
        const ours = fusedOp({ x, filter, bias }, attrs)!;
        const theirs = stock.kernelFunc({ inputs: { x, filter, bias }, attrs: attrs as never, backend: tf.backend() }) as tf.Tensor;
        const err = tf.max(tf.abs(tf.sub(ours, theirs))).dataSync()[0]!;
        if (!(err < 1e-4)) return `the oneDNN fused convolution disagrees with the stock kernel (max |diff| ${err})`;
      }
      return undefined;
    });
  } catch (e) {
    return `the oneDNN fused convolution is not usable here: ${opErrorMessage(e)}`;
  }
}
