/**
 * The training loop's state as checkpoints record it: epochs done, the history, the best
 * epoch, the learning rate, the counters of early stopping and plateau, and the position
 * inside an epoch that a mid-epoch checkpoint resumes from. Plain data, below train/ and
 * infer/, because checkpoints (core/checkpoint) save and load it.
 */
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
  /**
   * The monitored value at the last improvement larger than early_stopping.min_delta (the
   * reference early stopping measures against). Checkpoints written before the rename call it
   * `esBest`; core/checkpoint reads either.
   */
  earlyStopBest?: number | null;
  /** Set while an epoch is part-way done (a mid-epoch checkpoint). */
  position?: EpochPosition | null;
  /** Training calls of the seeded dropout so far, so a resumed run draws the same masks. */
  dropoutStep?: number;
}
