/**
 * When a training run saves which checkpoint: `last` (what a resume continues from) at each
 * epoch's end, on a stop inside an epoch and every checkpoint.every_minutes; `best` (what the
 * final evaluation, predict and export use) when the monitored metric improved, saved before
 * `last` so that a crash between the two redoes the epoch and rewrites best. A queued run
 * stages each `last` for upload: another worker may have to resume it from the tracking server.
 */
import type * as tf from '@tensorflow/tfjs';
import type { RunConfig } from '../config/normalise.js';
import { checkpointDir } from '../store/layout.js';
import { resumePoint, saveCheckpoint, stageForUpload, type BaseRef } from '../core/checkpoint.js';
import { dropoutStep } from '../core/model.js';
import type { LoopState } from './loop.js';

export interface PolicyModel {
  model: tf.LayersModel;
  optimizer: tf.Optimizer;
  base: BaseRef;
}

export class CheckpointPolicy {
  readonly lastDir: string;
  readonly bestDir: string;
  private readonly everyMs: number;
  private lastSave = Date.now();

  /** `onStaged` is given each checkpoint staged for upload (the launcher asked for uploads), else undefined. */
  constructor(
    dir: string,
    private readonly cfg: RunConfig,
    private readonly m: PolicyModel,
    private readonly onStaged: ((staged: string) => void) | undefined,
  ) {
    this.lastDir = checkpointDir(dir, 'last');
    this.bestDir = checkpointDir(dir, 'best');
    this.everyMs = (cfg.checkpoint.every_minutes ?? 0) * 60_000;
  }

  /** Whether checkpoint.every_minutes asks for a save inside the epoch now. */
  due(): boolean {
    return this.everyMs > 0 && Date.now() - this.lastSave >= this.everyMs;
  }

  /** Saves `last` with the state's position (and stages it for upload when asked). */
  async saveLast(st: LoopState): Promise<void> {
    if (!this.cfg.checkpoint.save_last) return;
    st.dropoutStep = dropoutStep(this.m.model);
    await saveCheckpoint(this.lastDir, this.m.model, this.m.optimizer, st, this.m.base);
    this.lastSave = Date.now();
    this.onStaged?.(stageForUpload(this.lastDir));
  }

  /** At an epoch's end: best (when improved) before last. */
  async saveEpoch(st: LoopState, improved: boolean): Promise<void> {
    st.dropoutStep = dropoutStep(this.m.model);
    if (improved && this.cfg.checkpoint.save_best) await saveCheckpoint(this.bestDir, this.m.model, this.m.optimizer, st, this.m.base);
    await this.saveLast(st);
  }

  /** Whether the run has a best checkpoint for the final evaluation. */
  hasBest(state: LoopState): boolean {
    return this.cfg.checkpoint.save_best && state.best !== null;
  }

  /** Loads the best checkpoint into the model (the recipe's final step reloads it). */
  async reloadBest(): Promise<void> {
    await resumePoint([this.bestDir], this.m.model, this.m.optimizer, this.m.base);
  }
}
