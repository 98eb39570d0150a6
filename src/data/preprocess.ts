/**
 * Model input preprocessing, applied per batch on the tensor backend after augmentation.
 * 'caffe' is Keras's VGG16 `preprocess_input`: RGB -> BGR, then subtract the ImageNet
 * per-channel mean in B, G, R order, with no scaling.
 */
import * as tf from '@tensorflow/tfjs';
import type { ResolvedExperiment } from '../config/types.gen.js';

export type Preprocessing = ResolvedExperiment['model']['preprocessing'];

/** ImageNet channel means in B, G, R order (Keras `imagenet_utils`, caffe mode). */
export const BGR_MEAN = [103.939, 116.779, 123.68] as const;

/** x: float32 [B, H, W, 3] RGB 0-255 -> float32 [B, H, W, 3] model input. */
export function preprocess(x: tf.Tensor4D, mode: Preprocessing): tf.Tensor4D {
  return tf.tidy(() => {
    switch (mode) {
      case 'caffe': return tf.sub(tf.reverse(x, -1), tf.tensor1d([...BGR_MEAN])) as tf.Tensor4D;
      case 'rgb_mean': return tf.sub(x, tf.tensor1d([BGR_MEAN[2], BGR_MEAN[1], BGR_MEAN[0]])) as tf.Tensor4D;
      case 'none': return x.clone();
    }
  });
}
