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
import { applyAugment, drawParams, type AugmentParams } from '../data/augment.js';
import { preprocess } from '../data/preprocess.js';
import { accumulate, emptyCounts, report, type FbetaCounts, type FbetaReport } from '../core/metrics.js';
import { chunks, epochOrder, pixelBatch, targetBatch } from '../core/batches.js';
import { bceSum } from '../core/loss.js';
import { evaluate, type Evaluation } from '../core/evaluate.js';
import type { EpochPosition, EpochRecord, LoopState, Metrics } from '../core/state.js';
import { splitFrozen, type SplitModel } from '../model/frozen.js';
import type { BatchProgress } from '../exec/protocol.js';

export type { EpochPosition, EpochRecord, LoopState, Metrics } from '../core/state.js';

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
  /** The shared feature cache (train/features.ts): a training batch's frozen-front output, or undefined to compute it here. */
  frozenFeatures?(images: readonly number[], params: readonly AugmentParams[]): Promise<tf.Tensor4D | undefined>;
  /** Validation through the feature cache, in place of evaluate(). */
  evaluateVal?(): Promise<Evaluation>;
}

export const monitorMode = (cfg: RunConfig): Mode => metricMode(cfg.checkpoint.monitor, cfg.checkpoint.mode);

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

/** What every batch of a run's training needs: the model split at its frozen front, the optimiser and the variables it steps. */
interface Trainer {
  model: tf.LayersModel;
  parts: SplitModel;
  optimizer: tf.Optimizer;
  vars: tf.Variable[];
  ds: Dataset;
  cfg: RunConfig;
  /** The feature cache's hooks, when the run has one. */
  cache: Pick<LoopHooks, 'frozenFeatures' | 'evaluateVal'>;
}

/** One epoch's pass over the training images, resumed from a saved position when there is one: its batches, running sums and clock. */
interface Pass {
  epoch: number;
  batches: number[][];
  /** The batch it starts at (0, or where a mid-epoch checkpoint stopped). */
  first: number;
  counts: FbetaCounts;
  lossSum: number;
  seen: number;
  elapsed(): number;
}

function startPass(epoch: number, state: LoopState, train: readonly number[], cfg: RunConfig, nTags: number): Pass {
  const resume = state.position?.epoch === epoch ? state.position : null;
  const before = resume?.seconds ?? 0;
  const t0 = performance.now();
  return {
    epoch,
    batches: chunks(epochOrder(train, cfg.training.seed, epoch), cfg.training.batch_size),
    first: resume?.batch ?? 0,
    counts: resume ? countsFrom(resume) : emptyCounts(nTags),
    lossSum: resume?.lossSum ?? 0,
    seen: resume?.seen ?? 0,
    elapsed: () => before + (performance.now() - t0) / 1000,
  };
}

/** Records where the pass is (before batch `b`) in the state and has it saved. */
async function savePosition(pass: Pass, b: number, state: LoopState, hooks: LoopHooks): Promise<void> {
  state.position = toPosition(pass.epoch, b, pass.lossSum, pass.seen, pass.counts, pass.elapsed());
  await hooks.onPosition?.(state);
}

/** A stop asked for before batch `b`: the position is saved first, so the next run continues from there. */
async function stopAt(pass: Pass, b: number, req: StopRequest, state: LoopState, hooks: LoopHooks): Promise<StopReason> {
  await savePosition(pass, b, state, hooks);
  return { status: req.status, reason: `${req.reason} (during epoch ${pass.epoch}, after batch ${b} of ${pass.batches.length}; it resumes from there)` };
}

/** One optimiser step on batch `b` of the pass, added to its running sums; a non-finite loss fails the run. */
async function trainBatch(t: Trainer, pass: Pass, b: number): Promise<StopReason | undefined> {
  const { cfg, ds } = t;
  const idx = pass.batches[b]!;
  const y = targetBatch(ds, idx);
  const params = drawParams(cfg.augmentation, idx.length, cfg.training.seed, pass.epoch, b);
  // From the feature cache, the input is the frozen front's output: only the rest runs, and
  // the batch's pixels are never built.
  const cached = await t.cache.frozenFeatures?.(idx, params);
  const input =
    cached ?? tf.tidy(() => preprocess(applyAugment(pixelBatch(ds.pixels, ds.size, idx), params, cfg.augmentation.fill_mode), cfg.model.preprocessing));
  const { cost, probs } = trainStep(cached ? { ...t.parts, frozen: (f) => f } : t.parts, t.optimizer, t.vars, input, y);
  const loss = (await cost.data())[0]!;
  const probsData = (await probs.data()) as Float32Array;
  const targets = await y.data();
  tf.dispose([cost, probs, input, y]);
  // The loss clips probabilities, and some backends clip NaN to the bound, so NaN outputs
  // are checked directly as well as the loss.
  if (!Number.isFinite(loss) || probsData.some(Number.isNaN)) {
    return {
      status: 'failed',
      reason: `non-finite training loss (${Number.isFinite(loss) ? 'NaN outputs' : loss}) at epoch ${pass.epoch}, batch ${b + 1}; try a lower training.learning_rate. No checkpoint was written for this epoch.`,
    };
  }
  accumulate(pass.counts, probsData, targets, ds.tags.length, cfg.metrics.beta, cfg.metrics.threshold);
  pass.lossSum += loss * idx.length;
  pass.seen += idx.length;
  return undefined;
}

/** The pass's remaining batches; a stop request (saved with its position), a due checkpoint or a failed batch is handled between them. */
async function trainPass(t: Trainer, pass: Pass, state: LoopState, hooks: LoopHooks): Promise<StopReason | undefined> {
  for (let b = pass.first; b < pass.batches.length; b++) {
    // Native kernels and resolved promises never give the event loop a turn inside an
    // epoch; yield once per batch so signals and a closed launcher channel are seen here.
    await new Promise((r) => setImmediate(r));
    const req = hooks.stopRequested?.();
    if (req) return stopAt(pass, b, req, state, hooks);
    if (b > pass.first && hooks.checkpointDue?.()) await savePosition(pass, b, state, hooks);
    const failed = await trainBatch(t, pass, b);
    if (failed) return failed;
    hooks.onBatch?.({ epoch: pass.epoch, batch: b + 1, batches: pass.batches.length, images: pass.seen, seconds: pass.elapsed() });
  }
  await new Promise((r) => setImmediate(r));
  const req = hooks.stopRequested?.();
  return req ? stopAt(pass, pass.batches.length, req, state, hooks) : undefined;
}

/**
 * After an epoch's monitored value: the best epoch, the early-stopping reference and the
 * plateau counter move on. Returns whether the epoch is the new best.
 */
function updateMonitors(state: LoopState, epoch: number, value: number, cfg: RunConfig): boolean {
  const mode: Mode = monitorMode(cfg);
  const improved = state.best === null || (mode === 'min' ? value < state.best.value : value > state.best.value);
  // Early stopping measures improvement against the last *significant* best (as Keras does),
  // so gains below min_delta do not reset its patience, however many there are.
  const ref = state.earlyStopBest ?? null;
  const significant = ref === null || (mode === 'min' ? ref - value : value - ref) > (cfg.training.early_stopping?.min_delta ?? 0);
  if (improved) state.best = { epoch, value };
  if (significant) state.earlyStopBest = value;
  state.sinceBest = significant ? 0 : state.sinceBest + 1;
  const plateau = cfg.training.reduce_lr_on_plateau;
  state.sinceLrChange = improved ? 0 : state.sinceLrChange + 1;
  if (plateau && state.sinceLrChange >= plateau.patience && state.lr > plateau.min_lr) {
    state.lr = Math.max(plateau.min_lr, state.lr * plateau.factor);
    state.sinceLrChange = 0;
  }
  return improved;
}

/** Validates the epoch's model and records the epoch in the state; a non-finite validation loss fails the run. */
async function endEpoch(t: Trainer, pass: Pass, val: readonly number[], state: LoopState): Promise<{ record: EpochRecord; improved: boolean } | StopReason> {
  const { cfg, ds } = t;
  const trainSeconds = pass.elapsed();
  const ev = t.cache.evaluateVal ? await t.cache.evaluateVal() : await evaluate(t.model, ds, val, cfg);
  if (!Number.isFinite(ev.loss))
    return {
      status: 'failed',
      reason: `non-finite validation loss at epoch ${pass.epoch}; try a lower training.learning_rate. No checkpoint was written for this epoch.`,
    };
  const metrics = { ...metricsOf('', pass.lossSum / pass.seen, report(pass.counts, ds.tags, cfg.metrics.beta)), ...metricsOf('val_', ev.loss, ev.fbeta) };
  const record: EpochRecord = { epoch: pass.epoch, metrics, lr: state.lr, seconds: pass.elapsed(), trainImagesPerSecond: pass.seen / trainSeconds };
  const improved = updateMonitors(state, pass.epoch, metrics[cfg.checkpoint.monitor]!, cfg);
  state.epoch = pass.epoch;
  state.position = null;
  state.history.push(record);
  return { record, improved };
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
  const t: Trainer = { model, parts: splitFrozen(model), optimizer, vars: model.trainableWeights.map((w) => w.read() as tf.Variable), ds, cfg, cache: hooks };
  const es = cfg.training.early_stopping;
  const earlyStop = (): StopReason => ({ status: 'completed', reason: `early stopping: ${cfg.checkpoint.monitor} did not improve for ${es!.patience} epochs` });
  // A run resumed after its early stop had triggered (killed before it was recorded) stays stopped.
  if (es && state.sinceBest >= es.patience) return earlyStop();
  // Pruned at a rung it asked about again on resuming (nothing of the next epoch trained): it ends there, as it would have.
  const pre = hooks.stopRequested?.();
  if (pre?.status === 'pruned' && (!state.position || state.position.batch === 0)) return { status: 'pruned', reason: pre.reason };
  for (let epoch = state.epoch + 1; epoch <= cfg.training.epochs; epoch++) {
    setLearningRate(optimizer, state.lr);
    const pass = startPass(epoch, state, split.train, cfg, ds.tags.length);
    const stopped = await trainPass(t, pass, state, hooks);
    if (stopped) return stopped;
    const ended = await endEpoch(t, pass, split.val, state);
    if ('status' in ended) return ended;
    await hooks.onEpoch(ended.record, state, ended.improved);
    if (es && state.sinceBest >= es.patience) return earlyStop();
    // Pruned at this epoch's end (an ASHA rung waits in onEpoch for the verdict): it ends here, with no epoch begun.
    const after = epoch < cfg.training.epochs ? hooks.stopRequested?.() : undefined;
    if (after?.status === 'pruned') return { status: 'pruned', reason: after.reason };
  }
  return { status: 'completed', reason: `trained ${cfg.training.epochs} epochs` };
}
