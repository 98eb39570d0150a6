/**
 * A model split where its training starts: the frozen layers in front, run once per batch with
 * no gradient tape, and the rest, run under the optimiser's tape.
 *
 * Why not just `model.apply(x, {training: true})` under the tape: tfjs then records every layer,
 * frozen or not, and keeps each frozen activation alive until the step ends (at 128x128, batch
 * 128, block1's alone are 512 MiB each); and tfjs-core does not fuse conv + bias + relu while a
 * tape records (its `shouldFuse`), so the native backend's one-kernel convolution
 * (backend/native-kernels.ts) would never run in training. Keras gets both for free: its graph
 * prunes what no gradient needs and fuses the rest. The frozen part needs no gradient (nothing
 * in it trains and the input is data), so computing it outside the tape changes no value.
 */
import type * as tf from '@tensorflow/tfjs';

type Layer = tf.LayersModel['layers'][number];

/** Layers whose output does not depend on `training` (unlike Dropout or BatchNormalization). */
const MODE_FREE = new Set(['InputLayer', 'Conv2D', 'MaxPooling2D', 'Flatten', 'GlobalAveragePooling2D']);

export interface SplitModel {
  /** How many layers (after the input) run outside the tape. */
  frozenLayers: number;
  /** The frozen front: call outside any gradient tape. */
  frozen(x: tf.Tensor): tf.Tensor;
  /** The rest, from the frozen front's output to the model's output. */
  rest(x: tf.Tensor, training: boolean): tf.Tensor;
}

/**
 * Splits a chain model (each layer fed by the one before it, as buildModel makes) after its
 * longest front of untrainable, mode-free layers. Any other model is not split: `frozen` is the
 * identity and `rest` the whole model.
 */
export function splitFrozen(model: tf.LayersModel): SplitModel {
  const layers = model.layers;
  let cut = 0;
  if (isChain(model)) {
    while (cut + 1 < layers.length) {
      const l = layers[cut + 1]!;
      if (l.trainableWeights.length > 0 || !MODE_FREE.has(l.getClassName())) break;
      cut++;
    }
  }
  if (cut === 0) return { frozenLayers: 0, frozen: (x) => x, rest: (x, training) => model.apply(x, { training }) as tf.Tensor };
  const front = layers.slice(1, cut + 1);
  const back = layers.slice(cut + 1);
  const run = (ls: Layer[], x: tf.Tensor, training: boolean): tf.Tensor => ls.reduce((h, l) => l.apply(h, { training }) as tf.Tensor, x);
  return { frozenLayers: cut, frozen: (x) => run(front, x, false), rest: (x, training) => run(back, x, training) };
}

/** One input layer, then layers each with one inbound call from the layer before, ending at the output. */
function isChain(model: tf.LayersModel): boolean {
  const layers = model.layers;
  if (model.inputs.length !== 1 || model.outputs.length !== 1 || layers[0]?.getClassName() !== 'InputLayer') return false;
  for (let i = 1; i < layers.length; i++) {
    const nodes = layers[i]!.inboundNodes;
    if (nodes.length !== 1 || nodes[0]!.inboundLayers.length !== 1 || nodes[0]!.inboundLayers[0] !== layers[i - 1]) return false;
  }
  return model.outputLayers.length === 1 && model.outputLayers[0] === layers[layers.length - 1];
}
