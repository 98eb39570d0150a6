/**
 * What an exported model carries besides its weights, so that a consumer (Keras in Python, a
 * tfjs app, MLflow's pyfunc) needs nothing else: the tag each output is, the thresholds that
 * turn probabilities into tags, and how to prepare an image for it.
 */
import type { Preprocessing } from '../data/preprocess.js';

export interface ExportMetadata {
  format: 'exp-model';
  version: 1;
  /** Output i is the probability of tags[i]. */
  tags: string[];
  /** Per tag: predict it when its probability is above this (tuned on validation, or the run's metrics.threshold). */
  thresholds: number[];
  /** Where the thresholds came from. */
  thresholds_from: 'tuned' | 'config';
  /** Input: image_size x image_size RGB, resized with `resize`, then `preprocessing`. */
  image_size: number;
  resize: string;
  /** 'caffe': RGB to BGR, then minus the ImageNet mean [103.939, 116.779, 123.68] (B, G, R); 'rgb_mean'; 'none'. */
  preprocessing: Preprocessing;
  beta: number;
  /** The run it came from. */
  run: { key: string; uid: string; name: string; experiment: string };
}
