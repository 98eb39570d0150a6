/**
 * Batches from the in-memory uint8 dataset. Floats exist only per batch: the full set stays
 * uint8 (2 GB for Planet at 128) and each batch is converted as it is used.
 */
import * as tf from '@tensorflow/tfjs';
import seedrandom from 'seedrandom';
import type { Dataset } from '../data/planet.js';

/** Packed uint8 RGB images [N, S, S, 3] -> float32 [n, S, S, 3] RGB 0-255 for the images `indices`. */
export function pixelBatch(pixels: Uint8Array, size: number, indices: readonly number[]): tf.Tensor4D {
  const frame = size * size * 3;
  const px = new Float32Array(indices.length * frame);
  indices.forEach((idx, i) => px.set(pixels.subarray(idx * frame, (idx + 1) * frame), i * frame));
  return tf.tensor4d(px, [indices.length, size, size, 3]);
}

/** y: float32 [n, T], the targets of images `indices`. */
export function targetBatch(ds: Dataset, indices: readonly number[]): tf.Tensor2D {
  const t = ds.tags.length;
  const ys = new Float32Array(indices.length * t);
  indices.forEach((idx, i) => {
    for (let k = 0; k < t; k++) ys[i * t + k] = ds.targets[idx * t + k]!;
  });
  return tf.tensor2d(ys, [indices.length, t]);
}

/** x: float32 [n, S, S, 3] RGB 0-255; y: float32 [n, T]. */
export function makeBatch(ds: Dataset, indices: readonly number[]): { x: tf.Tensor4D; y: tf.Tensor2D } {
  return { x: pixelBatch(ds.pixels, ds.size, indices), y: targetBatch(ds, indices) };
}

/** The targets of images `indices`, [n, nTags] row-major. */
export function targetsOf(ds: Dataset, indices: readonly number[]): Uint8Array {
  const t = ds.tags.length;
  const out = new Uint8Array(indices.length * t);
  indices.forEach((idx, i) => out.set(ds.targets.subarray(idx * t, (idx + 1) * t), i * t));
  return out;
}

/** The order of the training images in an epoch, seeded by (seed, epoch) so resume replays it. */
export function epochOrder(train: readonly number[], seed: number, epoch: number): number[] {
  const rng = seedrandom(`order:${seed}:${epoch}`);
  const out = [...train];
  for (let i = out.length - 1; i > 0; i--) {
    const j = Math.floor(rng() * (i + 1));
    [out[i], out[j]] = [out[j]!, out[i]!];
  }
  return out;
}

export function chunks<T>(items: readonly T[], size: number): T[][] {
  const out: T[][] = [];
  for (let i = 0; i < items.length; i += size) out.push(items.slice(i, i + size));
  return out;
}
