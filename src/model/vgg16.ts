/**
 * VGG16 without its top, built from tf.layers with Keras's layer names (tfjs-layers has no
 * VGG16 application), plus the classification head of the recipe. Keras's names matter: the
 * ImageNet HDF5 file is mapped onto this model by layer name (see weights.ts).
 */
import * as tf from '@tensorflow/tfjs';
import type { ResolvedExperiment } from '../config/types.gen.js';
import { SeededDropout } from './dropout.js';

/** The head settings, exactly as the resolved config holds them (the schema is their one definition). */
export type HeadOptions = ResolvedExperiment['model']['head'];

export interface BuildOptions {
  /** Side of the square input in pixels; at least 32, since the base halves it five times. */
  imageSize: number;
  /** Number of tags, i.e. sigmoid outputs. */
  nTags: number;
  /** VGG16 blocks (1-5) whose layers train; every other base layer is frozen. */
  trainableBlocks: readonly number[];
  head: HeadOptions;
  /** Base seed of every initializer (and of dropout); each layer derives its own from it. */
  seed: number;
}

/** VGG16's five blocks: number of 3x3 convs and their filters. Every block ends in a 2x2/2 max pool. */
export const VGG16_BLOCKS: readonly { block: number; convs: number; filters: number }[] = [
  { block: 1, convs: 2, filters: 64 },
  { block: 2, convs: 2, filters: 128 },
  { block: 3, convs: 3, filters: 256 },
  { block: 4, convs: 3, filters: 512 },
  { block: 5, convs: 3, filters: 512 },
];

/** Keras's names of the 13 conv layers, in order: block1_conv1 ... block5_conv3. */
export const VGG16_CONV_LAYERS: readonly string[] = VGG16_BLOCKS.flatMap(({ block, convs }) =>
  Array.from({ length: convs }, (_, i) => `block${block}_conv${i + 1}`),
);

/** Names of the head's layers (ours; Keras would have called them dense, dense_1). */
export const HEAD_LAYERS = {
  flatten: 'flatten',
  avgPool: 'global_average_pooling2d',
  dense: 'head_dense',
  dropout: 'head_dropout',
  out: 'head_out',
} as const;

/**
 * A per-layer seed derived from the base seed and the layer's name (FNV-1a), so that layers of
 * the same shape (block5_conv2 and block5_conv3) get different values, and adding a layer does
 * not shift the seeds of the others.
 */
export function layerSeed(seed: number, layerName: string): number {
  let h = 0x811c9dc5;
  for (const c of `${seed}/${layerName}`) {
    h ^= c.charCodeAt(0);
    h = Math.imul(h, 0x01000193) >>> 0;
  }
  return h;
}

type Initializer = ReturnType<typeof tf.initializers.heUniform>;

const INITIALIZERS: Record<HeadOptions['initializer'], (seed: number) => Initializer> = {
  he_uniform: (seed) => tf.initializers.heUniform({ seed }),
  he_normal: (seed) => tf.initializers.heNormal({ seed }),
  glorot_uniform: (seed) => tf.initializers.glorotUniform({ seed }),
  glorot_normal: (seed) => tf.initializers.glorotNormal({ seed }),
  lecun_normal: (seed) => tf.initializers.leCunNormal({ seed }),
};

/**
 * Builds VGG16 (no top) and the head.
 *
 * Input `[batch, imageSize, imageSize, 3]` (NHWC, already preprocessed); output
 * `[batch, nTags]` sigmoid probabilities. The base's feature map is
 * `[batch, floor(imageSize/32), floor(imageSize/32), 512]`; 'flatten' makes it
 * `[batch, 512 * floor(imageSize/32)^2]` (8,192 at 128), 'avg' makes it `[batch, 512]`.
 *
 * Layers of blocks not in `trainableBlocks` are built with `trainable: false`, so they are
 * absent from `model.trainableWeights` and the optimiser computes no gradients for them
 * (compile after building; tfjs reads the trainable set at compile time).
 * Initializers are seeded per layer, so the same options give the same weights.
 */
export function buildModel(opts: BuildOptions): tf.LayersModel {
  const { imageSize, nTags, trainableBlocks, head, seed } = opts;
  if (!Number.isInteger(imageSize) || imageSize < 32) throw new RangeError(`imageSize must be an integer >= 32 (VGG16 halves it five times), got ${imageSize}`);
  if (!Number.isInteger(nTags) || nTags < 1) throw new RangeError(`nTags must be a positive integer, got ${nTags}`);
  for (const b of trainableBlocks) if (!VGG16_BLOCKS.some((x) => x.block === b)) throw new RangeError(`trainableBlocks holds ${b}; VGG16 blocks are 1-5`);
  if (!(head.dropout >= 0 && head.dropout < 1)) throw new RangeError(`head.dropout must be in [0, 1), got ${head.dropout}`);

  const input = tf.input({ shape: [imageSize, imageSize, 3], name: 'input' });
  let x: tf.SymbolicTensor = input;
  for (const { block, convs, filters } of VGG16_BLOCKS) {
    const trainable = trainableBlocks.includes(block);
    for (let i = 1; i <= convs; i++) {
      const name = `block${block}_conv${i}`;
      x = tf.layers
        .conv2d({
          name,
          filters,
          kernelSize: 3,
          padding: 'same',
          activation: 'relu',
          trainable,
          // Keras's Conv2D default; it matters only for weights: 'none', since loaded weights replace it.
          kernelInitializer: tf.initializers.glorotUniform({ seed: layerSeed(seed, name) }),
        })
        .apply(x) as tf.SymbolicTensor;
    }
    x = tf.layers.maxPooling2d({ name: `block${block}_pool`, poolSize: 2, strides: 2, trainable }).apply(x) as tf.SymbolicTensor;
  }

  x = (head.pooling === 'flatten' ? tf.layers.flatten({ name: HEAD_LAYERS.flatten }) : tf.layers.globalAveragePooling2d({ name: HEAD_LAYERS.avgPool })).apply(
    x,
  ) as tf.SymbolicTensor;
  x = tf.layers
    .dense({
      name: HEAD_LAYERS.dense,
      units: head.units,
      activation: head.activation,
      kernelInitializer: INITIALIZERS[head.initializer](layerSeed(seed, HEAD_LAYERS.dense)),
    })
    .apply(x) as tf.SymbolicTensor;
  if (head.dropout > 0) {
    x = new SeededDropout({ name: HEAD_LAYERS.dropout, rate: head.dropout, seed: layerSeed(seed, HEAD_LAYERS.dropout) }).apply(x) as tf.SymbolicTensor;
  }
  const output = tf.layers
    .dense({
      name: HEAD_LAYERS.out,
      units: nTags,
      activation: 'sigmoid',
      kernelInitializer: tf.initializers.glorotUniform({ seed: layerSeed(seed, HEAD_LAYERS.out) }),
    })
    .apply(x) as tf.SymbolicTensor;
  return tf.model({ inputs: input, outputs: output, name: 'vgg16' });
}

export interface ParamCounts {
  total: number;
  trainable: number;
  nonTrainable: number;
}

// A weight's shape is always concrete; null (an unknown dim) would show up as NaN, not as a wrong count.
const size = (shape: readonly (number | null)[]): number => shape.reduce<number>((a, b) => a * (b ?? NaN), 1);

/** Parameter counts of a model, or of the given layers of it (by name), split by trainability. */
export function countParams(model: tf.LayersModel, layerNames?: Iterable<string>): ParamCounts {
  const layers = layerNames === undefined ? model.layers : [...layerNames].map((n) => model.getLayer(n));
  let total = 0;
  let trainable = 0;
  for (const layer of layers) {
    for (const w of layer.weights) total += size(w.shape);
    for (const w of layer.trainableWeights) trainable += size(w.shape);
  }
  return { total, trainable, nonTrainable: total - trainable };
}
