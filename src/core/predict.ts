/**
 * Probabilities from a trained model for a set of images, in batches, as training evaluates:
 * the same preprocessing, no augmentation. Test-time augmentation (TTA) averages the
 * probabilities over the 8 symmetries of the square (4 quarter turns, each with and without
 * a flip), which Planet's top solutions used: a chip has no up or left.
 */
import * as tf from '@tensorflow/tfjs';
import { preprocess, type Preprocessing } from '../data/preprocess.js';
import type { RunConfig } from '../config/normalise.js';
import { chunks, pixelBatch } from './batches.js';

/**
 * One of the 8 symmetries of a square image: `k` quarter turns counter-clockwise, then a
 * left-right flip when `flip`. x: [B, S, S, C] -> [B, S, S, C].
 */
export function dihedral(x: tf.Tensor4D, k: number, flip: boolean): tf.Tensor4D {
  return tf.tidy(() => {
    let y: tf.Tensor4D = x;
    // A quarter turn counter-clockwise: transpose H and W, then reverse the rows.
    for (let i = 0; i < ((k % 4) + 4) % 4; i++) y = tf.reverse(tf.transpose(y, [0, 2, 1, 3]), 1) as tf.Tensor4D;
    return flip ? (tf.reverse(y, 2) as tf.Tensor4D) : y.clone();
  });
}

export const DIHEDRAL: readonly { k: number; flip: boolean }[] = [0, 1, 2, 3].flatMap((k) => [false, true].map((flip) => ({ k, flip })));

/**
 * The batch size every evaluation and prediction of a run uses: its training batch size, but
 * at least 32 (no gradients are kept, so a small training batch only makes prediction slow).
 * Training's validation, thresholds tuning, exp evaluate, predict and ensemble all ask here,
 * so their probabilities (and losses) come from the same batches.
 */
export const evalBatchSize = (cfg: Pick<RunConfig, 'training'>): number => Math.max(cfg.training.batch_size, 32);

export interface PredictOptions {
  preprocessing: Preprocessing;
  batchSize: number;
  tta: boolean;
  onBatch?: (done: number, total: number) => void;
}

/** Probabilities [n, nTags] (row-major) for images `indices` of packed uint8 RGB `pixels` ([N, S, S, 3]). */
export async function predictProbs(
  model: tf.LayersModel,
  pixels: Uint8Array,
  size: number,
  indices: readonly number[],
  opts: PredictOptions,
): Promise<Float32Array> {
  const nTags = (model.outputs[0]!.shape as number[])[1]!;
  const out = new Float32Array(indices.length * nTags);
  let offset = 0;
  const views = opts.tta ? DIHEDRAL : [{ k: 0, flip: false }];
  for (const idx of chunks(indices, Math.max(1, opts.batchSize))) {
    const x = pixelBatch(pixels, size, idx);
    const mean = tf.tidy(() => {
      const input = preprocess(x, opts.preprocessing);
      const probs = views.map(({ k, flip }) => model.apply(dihedral(input, k, flip), { training: false }) as tf.Tensor2D);
      return tf.div(tf.addN(probs), views.length) as tf.Tensor2D;
    });
    out.set((await mean.data()) as Float32Array, offset);
    offset += idx.length * nTags;
    tf.dispose([x, mean]);
    opts.onBatch?.(offset / nTags, indices.length);
    await new Promise((r) => setImmediate(r)); // let Ctrl-C be seen between batches
  }
  return out;
}
