/**
 * The training loop: the same on every backend. One epoch = seeded shuffle, per-batch
 * augmentation and preprocessing on the backend, an optimiser step on the trainable
 * variables only, then an exact evaluation of the whole validation split. Callbacks handle
 * checkpoints and logging; the loop itself writes nothing.
 */
import * as tf from '@tensorflow/tfjs';
import type { RunConfig } from '../config/normalise.js';
import { metricMode, type Mode } from '../config/metric.js';
import type { Dataset } from '../data/planet.js';
import { applyAugment, drawParams } from '../data/augment.js';
import { preprocess } from '../data/preprocess.js';
import { accumulate, emptyCounts, report, type FbetaCounts, type FbetaReport } from '../core/metrics.js';
import { chunks, epochOrder, makeBatch } from '../core/batches.js';
import { splitFrozen, type SplitModel } from '../model/frozen.js';
import type { BatchProgress } from '../exec/protocol.js';

export type Metrics = Record<string, number>;

export interface EpochRecord {
  epoch: number;
  metrics: Metrics;
  /** Learning rate used during this epoch. */
  lr: number;
  seconds: number;
  trainImagesPerSecond: number;
}

/** Where a run stopped inside an epoch: enough to continue from the next batch as if it had not stopped. */
export interface EpochPosition {
  /** The epoch in progress (LoopState.epoch + 1). */
  epoch: number;
  /** Batches of it already trained. */
  batch: number;
  /** Running sums of the epoch's training metrics. */
  lossSum: number;
  seen: number;
  counts: { sampleSum: number; images: number; tp: number[]; fp: number[]; fn: number[] };
  /** Training seconds spent in this epoch so far. */
  seconds: number;
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
  /** Set while an epoch is part-way done (a mid-epoch checkpoint). */
  position?: EpochPosition | null;
  /** Training calls of the seeded dropout so far, so a resumed run draws the same masks. */
  dropoutStep?: number;
}

export const initialState = (cfg: RunConfig): LoopState => ({
  epoch: 0,
  history: [],
  best: null,
  lr: cfg.training.learning_rate,
  sinceBest: 0,
  sinceLrChange: 0,
  position: null,
});

export type StopStatus = 'completed' | 'failed' | 'killed' | 'pruned';
export interface StopReason {
  status: StopStatus;
  reason: string;
}

/** Why the run must stop before it is done: asked to (a signal, a gone parent) or pruned by the sweep. */
export interface StopRequest {
  status: 'killed' | 'pruned';
  reason: string;
}

export type { BatchProgress } from '../exec/protocol.js';

export interface LoopHooks {
  onBatch?(p: BatchProgress): void;
  /** Called after each epoch with the new state; `improved` says whether it is the new best. */
  onEpoch(record: EpochRecord, state: LoopState, improved: boolean): Promise<void>;
  /** Polled between batches (and before validation); a request stops the run there. */
  stopRequested?(): StopRequest | undefined;
  /** Polled between batches: whether a mid-epoch checkpoint is due (checkpoint.every_minutes). */
  checkpointDue?(): boolean;
  /** Saves the state with its position inside the epoch: on a stop, and when a checkpoint is due. */
  onPosition?(state: LoopState): Promise<void>;
}

export const monitorMode = (cfg: RunConfig): Mode => metricMode(cfg.checkpoint.monitor, cfg.checkpoint.mode);

/** Binary cross-entropy as Keras computes it on probabilities (clipped at 1e-7), summed over the batch. */
export function bceSum(probs: tf.Tensor2D, y: tf.Tensor2D): tf.Scalar {
  return tf.tidy(() => {
    const p = tf.clipByValue(probs, 1e-7, 1 - 1e-7);
    const ll = tf.add(tf.mul(y, tf.log(p)), tf.mul(tf.sub(1, y), tf.log(tf.sub(1, p))));
    return tf.neg(tf.div(tf.sum(ll), y.shape[1])) as tf.Scalar;
  });
}

/**
 * One optimiser step on a batch. `input` (augmented and preprocessed, owned by the caller) and
 * the model's frozen front are outside the gradient tape, the rest under it (model/frozen.ts
 * says why). Returns the mean loss and the batch's probabilities; the caller disposes both.
 */
export function trainStep(
  split: SplitModel,
  optimizer: tf.Optimizer,
  vars: tf.Variable[],
  input: tf.Tensor4D,
  y: tf.Tensor2D,
): { cost: tf.Scalar; probs: tf.Tensor2D } {
  const features = tf.tidy(() => split.frozen(input));
  let probs: tf.Tensor2D | undefined;
  try {
    const cost = optimizer.minimize(
      () => {
        const p = split.rest(features, true) as tf.Tensor2D;
        probs = tf.keep(p.clone());
        return tf.div(bceSum(p, y), y.shape[0]) as tf.Scalar;
      },
      true,
      vars,
    )!;
    return { cost, probs: probs! };
  } finally {
    if (features !== input) features.dispose();
  }
}

export function makeOptimizer(cfg: RunConfig, lr: number): tf.Optimizer {
  return cfg.training.optimizer === 'adam' ? tf.train.adam(lr, 0.9, 0.999, 1e-7) : tf.train.momentum(lr, cfg.training.momentum);
}

export function setLearningRate(opt: tf.Optimizer, lr: number): void {
  (opt as unknown as { learningRate: number }).learningRate = lr;
}

/** Loss and exact F-beta over a set of images, in batches, without augmentation. */
export function evaluate(
  model: tf.LayersModel,
  ds: Dataset,
  indices: readonly number[],
  cfg: RunConfig,
): { loss: number; fbeta: FbetaReport; probs: Float32Array } {
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
    x.dispose();
    y.dispose();
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

const toPosition = (epoch: number, batch: number, lossSum: number, seen: number, c: FbetaCounts, seconds: number): EpochPosition => ({
  epoch,
  batch,
  lossSum,
  seen,
  seconds,
  counts: { sampleSum: c.sampleSum, images: c.images, tp: Array.from(c.tp), fp: Array.from(c.fp), fn: Array.from(c.fn) },
});

function countsFrom(p: EpochPosition): FbetaCounts {
  return {
    sampleSum: p.counts.sampleSum,
    images: p.counts.images,
    tp: Float64Array.from(p.counts.tp),
    fp: Float64Array.from(p.counts.fp),
    fn: Float64Array.from(p.counts.fn),
  };
}

/**
 * Trains from `state` until the configured epochs, early stopping, a non-finite loss or a
 * stop request. The optimiser must already hold any resumed state. A stop inside an epoch
 * saves the position (onPosition) so that the next run continues from the next batch with
 * the same data order, augmentation and running metrics.
 */
export async function trainLoop(
  model: tf.LayersModel,
  optimizer: tf.Optimizer,
  ds: Dataset,
  split: { train: number[]; val: number[] },
  cfg: RunConfig,
  state: LoopState,
  hooks: LoopHooks,
): Promise<StopReason> {
  const vars = model.trainableWeights.map((w) => w.read() as tf.Variable);
  const parts = splitFrozen(model);
  const mode = monitorMode(cfg);
  const es = cfg.training.early_stopping;
  const earlyStop = (): StopReason => ({ status: 'completed', reason: `early stopping: ${cfg.checkpoint.monitor} did not improve for ${es!.patience} epochs` });
  // A run resumed after its early stop had triggered (killed before it was recorded) stays stopped.
  if (es && state.sinceBest >= es.patience) return earlyStop();
  // Pruned at a rung it asked about again on resuming (nothing of the next epoch trained): it ends there, as it would have.
  const pre = hooks.stopRequested?.();
  if (pre?.status === 'pruned' && (!state.position || state.position.batch === 0)) return { status: 'pruned', reason: pre.reason };
  const nTags = ds.tags.length;
  for (let epoch = state.epoch + 1; epoch <= cfg.training.epochs; epoch++) {
    setLearningRate(optimizer, state.lr);
    const resume = state.position?.epoch === epoch ? state.position : null;
    const counts = resume ? countsFrom(resume) : emptyCounts(nTags);
    let lossSum = resume?.lossSum ?? 0;
    let seen = resume?.seen ?? 0;
    const before = resume?.seconds ?? 0;
    const t0 = performance.now();
    const elapsed = (): number => before + (performance.now() - t0) / 1000;
    const batches = chunks(epochOrder(split.train, cfg.training.seed, epoch), cfg.training.batch_size);
    const stopAt = async (b: number, req: StopRequest): Promise<StopReason> => {
      state.position = toPosition(epoch, b, lossSum, seen, counts, elapsed());
      await hooks.onPosition?.(state);
      return { status: req.status, reason: `${req.reason} (during epoch ${epoch}, after batch ${b} of ${batches.length}; it resumes from there)` };
    };
    for (let b = resume?.batch ?? 0; b < batches.length; b++) {
      // Native kernels and resolved promises never give the event loop a turn inside an
      // epoch; yield once per batch so signals and a closed launcher channel are seen here.
      await new Promise((r) => setImmediate(r));
      const req = hooks.stopRequested?.();
      if (req) return stopAt(b, req);
      if (b > (resume?.batch ?? 0) && hooks.checkpointDue?.()) {
        state.position = toPosition(epoch, b, lossSum, seen, counts, elapsed());
        await hooks.onPosition?.(state);
      }
      const idx = batches[b]!;
      const { x, y } = makeBatch(ds, idx);
      const input = tf.tidy(() =>
        preprocess(applyAugment(x, drawParams(cfg.augmentation, idx.length, cfg.training.seed, epoch, b), cfg.augmentation.fill_mode), cfg.model.preprocessing),
      );
      const { cost, probs } = trainStep(parts, optimizer, vars, input, y);
      const loss = (await cost.data())[0]!;
      const probsData = (await probs.data()) as Float32Array;
      const targets = await y.data();
      tf.dispose([cost, probs, input, x, y]);
      // The loss clips probabilities, and some backends clip NaN to the bound, so NaN outputs
      // are checked directly as well as the loss.
      if (!Number.isFinite(loss) || probsData.some(Number.isNaN)) {
        return {
          status: 'failed',
          reason: `non-finite training loss (${Number.isFinite(loss) ? 'NaN outputs' : loss}) at epoch ${epoch}, batch ${b + 1}; try a lower training.learning_rate. No checkpoint was written for this epoch.`,
        };
      }
      accumulate(counts, probsData, targets, nTags, cfg.metrics.beta, cfg.metrics.threshold);
      lossSum += loss * idx.length;
      seen += idx.length;
      hooks.onBatch?.({ epoch, batch: b + 1, batches: batches.length, images: seen, seconds: elapsed() });
    }
    await new Promise((r) => setImmediate(r));
    const req = hooks.stopRequested?.();
    if (req) return stopAt(batches.length, req);
    const trainSeconds = elapsed();
    const val = evaluate(model, ds, split.val, cfg);
    if (!Number.isFinite(val.loss))
      return {
        status: 'failed',
        reason: `non-finite validation loss at epoch ${epoch}; try a lower training.learning_rate. No checkpoint was written for this epoch.`,
      };
    const metrics = { ...metricsOf('', lossSum / seen, report(counts, ds.tags, cfg.metrics.beta)), ...metricsOf('val_', val.loss, val.fbeta) };
    const record: EpochRecord = { epoch, metrics, lr: state.lr, seconds: elapsed(), trainImagesPerSecond: seen / trainSeconds };
    const value = metrics[cfg.checkpoint.monitor]!;
    const improved = state.best === null || (mode === 'min' ? value < state.best.value : value > state.best.value);
    // Early stopping measures improvement against the last *significant* best (as Keras does),
    // so gains below min_delta do not reset its patience, however many there are.
    const ref = state.esBest ?? null;
    const significant = ref === null || (mode === 'min' ? ref - value : value - ref) > (es?.min_delta ?? 0);
    state.epoch = epoch;
    state.position = null;
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
    if (es && state.sinceBest >= es.patience) return earlyStop();
    // Pruned at this epoch's end (an ASHA rung waits in onEpoch for the verdict): it ends here, with no epoch begun.
    const after = epoch < cfg.training.epochs ? hooks.stopRequested?.() : undefined;
    if (after?.status === 'pruned') return { status: 'pruned', reason: after.reason };
  }
  return { status: 'completed', reason: `trained ${cfg.training.epochs} epochs` };
}
