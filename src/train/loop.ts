/**
 * The training loop: the same on every backend. One epoch = seeded shuffle, per-batch
 * augmentation and preprocessing on the backend, an optimiser step on the trainable
 * variables only, then an exact evaluation of the whole validation split. Callbacks handle
 * checkpoints and logging; the loop itself writes nothing.
 */
import * as tf from '@tensorflow/tfjs';
import type { RunConfig } from '../config/normalise.js';
import type { Dataset } from '../data/planet.js';
import { applyAugment, drawParams } from '../data/augment.js';
import { preprocess } from '../data/preprocess.js';
import { accumulate, emptyCounts, report, type FbetaReport } from './metrics.js';
import { chunks, epochOrder, makeBatch } from './batches.js';

export type Metrics = Record<string, number>;

export interface EpochRecord {
  epoch: number;
  metrics: Metrics;
  /** Learning rate used during this epoch. */
  lr: number;
  seconds: number;
  trainImagesPerSecond: number;
}

export interface LoopState {
  /** Epochs completed. */
  epoch: number;
  history: EpochRecord[];
  best: { epoch: number; value: number } | null;
  lr: number;
  /** Epochs since the monitored metric last improved (early stopping / plateau). */
  sinceBest: number;
  sinceLrChange: number;
  /** The monitored value at the last improvement larger than early_stopping.min_delta. */
  esBest?: number | null;
}

export const initialState = (cfg: RunConfig): LoopState => ({ epoch: 0, history: [], best: null, lr: cfg.training.learning_rate, sinceBest: 0, sinceLrChange: 0 });

export type StopReason = { status: 'completed'; reason: string } | { status: 'failed'; reason: string } | { status: 'killed'; reason: string };

export interface LoopHooks {
  onBatch?(epoch: number, batch: number, batches: number, imagesDone: number, seconds: number): void;
  /** Called after each epoch with the new state; `improved` says whether it is the new best. */
  onEpoch(record: EpochRecord, state: LoopState, improved: boolean): Promise<void>;
  /** Polled between batches; true stops the run as killed (e.g. on SIGINT). */
  interrupted?(): boolean;
}

export function monitorMode(cfg: RunConfig): 'min' | 'max' {
  if (cfg.checkpoint.mode !== 'auto') return cfg.checkpoint.mode;
  return cfg.checkpoint.monitor.endsWith('loss') ? 'min' : 'max';
}

/** Binary cross-entropy as Keras computes it on probabilities (clipped at 1e-7), summed over the batch. */
export function bceSum(probs: tf.Tensor2D, y: tf.Tensor2D): tf.Scalar {
  return tf.tidy(() => {
    const p = tf.clipByValue(probs, 1e-7, 1 - 1e-7);
    const ll = tf.add(tf.mul(y, tf.log(p)), tf.mul(tf.sub(1, y), tf.log(tf.sub(1, p))));
    return tf.neg(tf.div(tf.sum(ll), y.shape[1])) as tf.Scalar;
  });
}

export function makeOptimizer(cfg: RunConfig, lr: number): tf.Optimizer {
  return cfg.training.optimizer === 'adam' ? tf.train.adam(lr, 0.9, 0.999, 1e-7) : tf.train.momentum(lr, cfg.training.momentum);
}

export function setLearningRate(opt: tf.Optimizer, lr: number): void {
  (opt as unknown as { learningRate: number }).learningRate = lr;
}

/** Loss and exact F-beta over a set of images, in batches, without augmentation. */
export function evaluate(model: tf.LayersModel, ds: Dataset, indices: readonly number[], cfg: RunConfig): { loss: number; fbeta: FbetaReport; probs: Float32Array } {
  const counts = emptyCounts(ds.tags.length);
  const probsAll = new Float32Array(indices.length * ds.tags.length);
  let lossSum = 0;
  let offset = 0;
  for (const idx of chunks(indices, Math.max(cfg.training.batch_size, 32))) {
    const { x, y } = makeBatch(ds, idx);
    const [probs, loss] = tf.tidy(() => {
      const p = model.apply(preprocess(x, cfg.model.preprocessing), { training: false }) as tf.Tensor2D;
      return [p.dataSync() as Float32Array, bceSum(p, y).dataSync()[0]!];
    });
    accumulate(counts, probs, y.dataSync(), ds.tags.length, cfg.metrics.beta, cfg.metrics.threshold);
    probsAll.set(probs, offset);
    offset += probs.length;
    lossSum += loss;
    x.dispose(); y.dispose();
  }
  return { loss: lossSum / indices.length, fbeta: report(counts, ds.tags, cfg.metrics.beta), probs: probsAll };
}

/** Flat metric dict in Keras's names, plus per-tag and averaged scores. */
export function metricsOf(prefix: '' | 'val_', loss: number, r: FbetaReport): Metrics {
  const m: Metrics = { [`${prefix}loss`]: loss, [`${prefix}fbeta`]: r.fbeta };
  if (prefix === 'val_') {
    for (const avg of ['micro', 'macro'] as const) {
      m[`val_${avg}_precision`] = r[avg].precision;
      m[`val_${avg}_recall`] = r[avg].recall;
      m[`val_${avg}_fbeta`] = r[avg].fbeta;
    }
    for (const [tag, s] of Object.entries(r.perTag)) {
      m[`val_precision.${tag}`] = s.precision;
      m[`val_recall.${tag}`] = s.recall;
      m[`val_fbeta.${tag}`] = s.fbeta;
    }
  }
  return m;
}

/**
 * Trains from `state` until the configured epochs, early stopping, a non-finite loss or an
 * interruption. The optimiser must already hold any resumed state.
 */
export async function trainLoop(model: tf.LayersModel, optimizer: tf.Optimizer, ds: Dataset, split: { train: number[]; val: number[] }, cfg: RunConfig, state: LoopState, hooks: LoopHooks): Promise<StopReason> {
  const vars = model.trainableWeights.map((w) => w.read() as tf.Variable);
  const mode = monitorMode(cfg);
  const es = cfg.training.early_stopping;
  // A run resumed after its early stop had triggered (killed before it was recorded) stays stopped.
  if (es && state.sinceBest >= es.patience) return { status: 'completed', reason: `early stopping: ${cfg.checkpoint.monitor} did not improve for ${es.patience} epochs` };
  const nTags = ds.tags.length;
  for (let epoch = state.epoch + 1; epoch <= cfg.training.epochs; epoch++) {
    setLearningRate(optimizer, state.lr);
    const t0 = performance.now();
    const counts = emptyCounts(nTags);
    let lossSum = 0;
    let seen = 0;
    const batches = chunks(epochOrder(split.train, cfg.training.seed, epoch), cfg.training.batch_size);
    for (let b = 0; b < batches.length; b++) {
      if (hooks.interrupted?.()) return { status: 'killed', reason: `interrupted during epoch ${epoch}` };
      const idx = batches[b]!;
      const { x, y } = makeBatch(ds, idx);
      let probs: tf.Tensor | undefined;
      const cost = optimizer.minimize(() => {
        const aug = applyAugment(x, drawParams(cfg.augmentation, idx.length, cfg.training.seed, epoch, b), cfg.augmentation.fill_mode);
        const input = preprocess(aug, cfg.model.preprocessing);
        const p = model.apply(input, { training: true }) as tf.Tensor2D;
        probs = tf.keep(p.clone());
        return tf.div(bceSum(p, y), idx.length) as tf.Scalar;
      }, true, vars);
      const loss = (await cost!.data())[0]!;
      const probsData = (await probs!.data()) as Float32Array;
      const targets = await y.data();
      tf.dispose([cost!, probs!, x, y]);
      // The loss clips probabilities, and some backends clip NaN to the bound, so NaN outputs
      // are checked directly as well as the loss.
      if (!Number.isFinite(loss) || probsData.some(Number.isNaN)) {
        return { status: 'failed', reason: `non-finite training loss (${Number.isFinite(loss) ? 'NaN outputs' : loss}) at epoch ${epoch}, batch ${b + 1}; try a lower training.learning_rate. No checkpoint was written for this epoch.` };
      }
      accumulate(counts, probsData, targets, nTags, cfg.metrics.beta, cfg.metrics.threshold);
      lossSum += loss * idx.length;
      seen += idx.length;
      hooks.onBatch?.(epoch, b + 1, batches.length, seen, (performance.now() - t0) / 1000);
    }
    const trainSeconds = (performance.now() - t0) / 1000;
    const val = evaluate(model, ds, split.val, cfg);
    if (!Number.isFinite(val.loss)) return { status: 'failed', reason: `non-finite validation loss at epoch ${epoch}; try a lower training.learning_rate. No checkpoint was written for this epoch.` };
    const metrics = { ...metricsOf('', lossSum / seen, report(counts, ds.tags, cfg.metrics.beta)), ...metricsOf('val_', val.loss, val.fbeta) };
    const record: EpochRecord = { epoch, metrics, lr: state.lr, seconds: (performance.now() - t0) / 1000, trainImagesPerSecond: seen / trainSeconds };
    const value = metrics[cfg.checkpoint.monitor]!;
    const improved = state.best === null || (mode === 'min' ? value < state.best.value : value > state.best.value);
    // Early stopping measures improvement against the last *significant* best (as Keras does),
    // so gains below min_delta do not reset its patience, however many there are.
    const ref = state.esBest ?? null;
    const significant = ref === null || (mode === 'min' ? ref - value : value - ref) > (es?.min_delta ?? 0);
    state.epoch = epoch;
    state.history.push(record);
    if (improved) state.best = { epoch, value };
    if (significant) state.esBest = value;
    state.sinceBest = significant ? 0 : state.sinceBest + 1;
    const rop = cfg.training.reduce_lr_on_plateau;
    state.sinceLrChange = improved ? 0 : state.sinceLrChange + 1;
    if (rop && state.sinceLrChange >= rop.patience && state.lr > rop.min_lr) {
      state.lr = Math.max(rop.min_lr, state.lr * rop.factor);
      state.sinceLrChange = 0;
    }
    await hooks.onEpoch(record, state, improved);
    if (es && state.sinceBest >= es.patience) return { status: 'completed', reason: `early stopping: ${cfg.checkpoint.monitor} did not improve for ${es.patience} epochs` };
  }
  return { status: 'completed', reason: `trained ${cfg.training.epochs} epochs` };
}
