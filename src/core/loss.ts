/**
 * Binary cross-entropy as Keras computes it on probabilities (clipped at 1e-7): the one
 * definition, used by the optimiser step (on the batch's tensor, under the gradient tape)
 * and by every reported loss (training's validation, exp evaluate), which feed it the
 * predicted probabilities in the same batches so that the figures agree to the bit.
 */
import * as tf from '@tensorflow/tfjs';

/** The batch's BCE summed over images (mean over tags). */
export function bceSum(probs: tf.Tensor2D, y: tf.Tensor2D): tf.Scalar {
  return tf.tidy(() => {
    const p = tf.clipByValue(probs, 1e-7, 1 - 1e-7);
    const ll = tf.add(tf.mul(y, tf.log(p)), tf.mul(tf.sub(1, y), tf.log(tf.sub(1, p))));
    return tf.neg(tf.div(tf.sum(ll), y.shape[1])) as tf.Scalar;
  });
}

/**
 * The mean BCE of predictions `probs` against `targets` ([n, nTags] row-major), summed batch by
 * batch of `batchSize` images as the evaluation loop predicts them (core/predict: evalBatchSize).
 */
export function meanBce(probs: ArrayLike<number>, targets: ArrayLike<number>, nTags: number, batchSize: number): number {
  const p32 = probs instanceof Float32Array ? probs : Float32Array.from(probs);
  const n = p32.length / nTags;
  if (n === 0) return 0;
  const rows = Math.max(1, batchSize);
  let sum = 0;
  for (let from = 0; from < n; from += rows) {
    const m = Math.min(rows, n - from);
    const y = Float32Array.from({ length: m * nTags }, (_, k) => targets[from * nTags + k]!);
    sum += tf.tidy(() => bceSum(tf.tensor2d(p32.subarray(from * nTags, (from + m) * nTags), [m, nTags]), tf.tensor2d(y, [m, nTags])).dataSync()[0]!);
  }
  return sum / n;
}
