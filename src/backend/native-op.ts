/**
 * Calling a TensorFlow op that tfjs-node has no kernel for, on the native backend.
 *
 * tfjs-node runs each tfjs kernel as one or more eager TensorFlow ops through its binding, but
 * libtensorflow has faster single ops for two things exp does every batch: the oneDNN fused
 * convolution (native-kernels.ts) and the image warp of augmentation (ImageProjectiveTransformV3,
 * the op Keras's RandomRotation runs). `nativeOp` reaches them. Callers fall back to their
 * portable tfjs path when it returns undefined (not on the native backend) or throws.
 */
import * as tf from '@tensorflow/tfjs';
import type { TensorInfo } from '@tensorflow/tfjs';

/** The parts of tfjs-node's backend object used here (both native packages share the class). */
interface NodeBackend {
  isUsingGpuDevice?: boolean;
  binding: { TF_ATTR_STRING: number; TF_ATTR_INT: number; TF_ATTR_FLOAT: number; TF_ATTR_TYPE: number; TF_FLOAT: number };
  executeSingleOutput(name: string, attrs: { name: string; type: number; value: unknown }[], inputs: TensorInfo[]): tf.Tensor;
}

/** An op attribute; lists are arrays (string and type lists need exp's patched binding, see scripts/patch-binding.mjs). */
export type OpAttr =
  | { name: string; string: string | string[] }
  | { name: string; int: number | number[] }
  | { name: string; float: number }
  | { name: string; type: 'float32' }
  | { name: string; types: 'float32'[] };

/** The native backend object when it is the current backend, else undefined. */
export function nativeBackend(): NodeBackend | undefined {
  return tf.getBackend() === 'tensorflow' ? (tf.backend() as unknown as NodeBackend) : undefined;
}

/** Runs the TensorFlow op `name` eagerly on the native backend; undefined when that is not the current backend. */
export function nativeOp(name: string, attrs: readonly OpAttr[], inputs: TensorInfo[]): tf.Tensor | undefined {
  const be = nativeBackend();
  if (be === undefined) return undefined;
  const b = be.binding;
  const wire = attrs.map((a) =>
    'string' in a
      ? { name: a.name, type: b.TF_ATTR_STRING, value: a.string }
      : 'int' in a
        ? { name: a.name, type: b.TF_ATTR_INT, value: a.int }
        : 'float' in a
          ? { name: a.name, type: b.TF_ATTR_FLOAT, value: a.float }
          : { name: a.name, type: b.TF_ATTR_TYPE, value: 'types' in a ? a.types.map(() => b.TF_FLOAT) : b.TF_FLOAT },
  );
  return be.executeSingleOutput(name, wire, inputs);
}

/** The first line of a TensorFlow error worth showing (its "Message:" line when there is one). */
export function opErrorMessage(e: unknown): string {
  const lines = (e instanceof Error ? e.message : String(e)).split('\n');
  return (lines.find((l) => l.startsWith('Message:')) ?? lines[0] ?? '').trim();
}

let warpBroken = false;

/**
 * Warps a batch with per-image maps from output pixel (x, y) to source (a*x + b*y + c,
 * d*x + e*y + f), bilinear, coordinates clamped to the image ('nearest' fill): TensorFlow's
 * ImageProjectiveTransformV3, one multi-threaded kernel (~9x the portable gather path at 128
 * px). Undefined off the native backend, or if the op failed here once.
 */
export function nativeWarpNearest(images: tf.Tensor4D, maps: readonly (readonly number[])[]): tf.Tensor4D | undefined {
  if (warpBroken || nativeBackend() === undefined) return undefined;
  const [, h, w] = images.shape;
  const transforms = tf.tensor2d(
    maps.map((m) => [...m, 0, 0]),
    [maps.length, 8],
  );
  const shape = tf.tensor1d([h, w], 'int32');
  const fillValue = tf.scalar(0);
  try {
    return nativeOp(
      'ImageProjectiveTransformV3',
      [
        { name: 'dtype', type: 'float32' },
        { name: 'interpolation', string: 'BILINEAR' },
        { name: 'fill_mode', string: 'NEAREST' },
      ],
      [images, transforms, shape, fillValue],
    ) as tf.Tensor4D;
  } catch {
    warpBroken = true; // an old libtensorflow without the op: the portable path from now on
    return undefined;
  } finally {
    tf.dispose([transforms, shape, fillValue]);
  }
}
