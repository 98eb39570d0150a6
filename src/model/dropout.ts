/**
 * Dropout whose masks are reproducible from a seed and still differ from step to step.
 *
 * tfjs's own Dropout cannot give both: with a `seed` it rebuilds the same PRNG on every call,
 * so every training step drops the same units; without one it draws from Math.random.
 * This layer seeds each call with (seed, step) instead.
 */
import * as tf from '@tensorflow/tfjs';

export interface SeededDropoutArgs {
  name: string;
  /** Fraction of units dropped, in [0, 1). */
  rate: number;
  seed: number;
}

export class SeededDropout extends tf.layers.Layer {
  static className = 'SeededDropout';
  readonly rate: number;
  readonly seed: number;
  /**
   * Training calls made so far; the next mask is drawn with seed `${seed}:${step}`.
   * Public so that a resumed run can restore it and draw the masks it would have drawn.
   */
  step = 0;

  constructor(args: SeededDropoutArgs) {
    super({ name: args.name });
    this.rate = args.rate;
    this.seed = args.seed;
    this.supportsMasking = true;
  }

  /** `[batch, ...]` in, same shape out: scaled by 1/(1-rate) with dropped units zeroed when training, unchanged otherwise. */
  override call(inputs: tf.Tensor | tf.Tensor[], kwargs: Record<string, unknown>): tf.Tensor {
    const x = Array.isArray(inputs) ? inputs[0]! : inputs;
    if (kwargs['training'] !== true || this.rate === 0) return tf.clone(x);
    return tf.dropout(x, this.rate, undefined, `${this.seed}:${this.step++}`);
  }

  override getConfig(): tf.serialization.ConfigDict {
    return { ...super.getConfig(), rate: this.rate, seed: this.seed };
  }
}

tf.serialization.registerClass(SeededDropout);
