/**
 * Multiply-add count of a model, per image, from its layers: 2 FLOP per multiply-add of every
 * Conv2D and Dense (bias, relu, pooling and the optimiser are left out: well under 1%).
 *
 * A training step adds, for each trainable layer, its weight gradient (as many FLOP as its
 * forward), and for each layer after the first trainable one, its input gradient (as many
 * again): tfjs computes gradients only on paths from the trainable variables, so frozen blocks
 * cost a forward pass only. VGG16 at 128 with block5 trainable: 10.02 GFLOP forward, 11.53 per
 * training image (VGG16's published figures: ~10.0 and ~11.6).
 */
import type * as tf from '@tensorflow/tfjs';

export interface Flops {
  /** Per image, forward. */
  forward: number;
  /** Per image, forward + backward of a training step. */
  train: number;
}

export function countFlops(model: tf.LayersModel): Flops {
  let forward = 0,
    backward = 0,
    upstreamTrainable = false;
  for (const layer of model.layers) {
    const kernel = layer.weights[0]?.shape;
    const out = layer.outputShape as (number | null)[];
    let f = 0;
    if (layer.getClassName() === 'Conv2D' && kernel) {
      const [kh, kw, cin, cout] = kernel as number[];
      f = 2 * out[1]! * out[2]! * kh! * kw! * cin! * cout!;
    } else if (layer.getClassName() === 'Dense' && kernel) {
      f = 2 * kernel[0]! * kernel[1]!;
    }
    forward += f;
    const trains = layer.trainable && layer.trainableWeights.length > 0;
    if (trains) backward += f;
    if (upstreamTrainable) backward += f;
    upstreamTrainable ||= trains;
  }
  return { forward, train: forward + backward };
}
