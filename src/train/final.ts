/**
 * The end of a run, after its last epoch: the recipe's final step (reload the best checkpoint
 * and evaluate it), then what exp adds on the same predictions: thresholds tuned per tag
 * (saved in thresholds.json; exp predict and exports use them) with an honest held-out
 * figure, and test-time augmentation when asked.
 */
import type * as tf from '@tensorflow/tfjs';
import type { RunConfig } from '../config/normalise.js';
import type { Dataset } from '../data/planet.js';
import { writeThresholds } from '../store/thresholds.js';
import type { Metrics } from '../store/types.js';
import { fbetaAt, heldOutEstimate, tuneThresholds, type ThresholdsFile } from '../core/thresholds.js';
import { evalBatchSize, predictProbs } from '../core/predict.js';
import { evaluate } from '../core/evaluate.js';
import type { Split } from '../core/data.js';
import { metricsOf } from './loop.js';

/** Evaluates the model (the best checkpoint, loaded by the caller) on the validation split; writes thresholds.json. */
export async function finalEvaluation(
  model: tf.LayersModel,
  ds: Dataset,
  split: Split,
  cfg: RunConfig,
  dir: string,
): Promise<{ final: Metrics; evalImagesPerSecond: number }> {
  const t0 = performance.now();
  const ev = await evaluate(model, ds, split.val, cfg);
  const evalImagesPerSecond = split.val.length / ((performance.now() - t0) / 1000);
  const final = metricsOf('val_', ev.loss, ev.fbeta);
  const targets = ev.targets;
  const nTags = ds.tags.length;
  const beta = cfg.metrics.beta;
  let probs: Float32Array = ev.probs;
  if (cfg.evaluation.tta) {
    probs = await predictProbs(model, ds.pixels, ds.size, split.val, {
      preprocessing: cfg.model.preprocessing,
      batchSize: evalBatchSize(cfg),
      tta: true,
    });
    final.val_fbeta_tta = fbetaAt(
      { probs, targets, nTags },
      beta,
      ds.tags.map(() => cfg.metrics.threshold),
    );
  }
  if (cfg.evaluation.tune_thresholds) {
    const p = { probs, targets, nTags };
    const tuned = tuneThresholds(p, beta, { start: ds.tags.map(() => cfg.metrics.threshold) });
    const heldOut = heldOutEstimate(p, beta, cfg.metrics.threshold);
    const file: ThresholdsFile = {
      version: 1,
      tags: ds.tags,
      thresholds: tuned.thresholds,
      beta,
      tta: cfg.evaluation.tta,
      fbeta_at_threshold: fbetaAt(
        p,
        beta,
        ds.tags.map(() => cfg.metrics.threshold),
      ),
      fbeta_tuned: tuned.fbeta,
      held_out: { at_threshold: heldOut.at_base, tuned: heldOut.tuned },
    };
    writeThresholds(dir, file);
    final.val_fbeta_tuned = tuned.fbeta;
    final.val_fbeta_tuned_heldout = heldOut.tuned;
  }
  return { final, evalImagesPerSecond };
}
