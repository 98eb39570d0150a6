/**
 * Checkpoints hold what training changes: the trainable weights, the optimiser's state (Adam
 * moments, iteration count) and the loop state (epoch, position inside it, history, best,
 * learning rate). The frozen weights are not copied: the checkpoint names where they come
 * from (the weights file and its MD5, or the seeded random init), and loading rebuilds them
 * from there first. At 128 px with block5 trainable that is 98 MB instead of 226 MB.
 *
 * A checkpoint is a folder built under a temporary name and swapped in, so `checkpoints/last`
 * is always whole; every tensor file carries a SHA-256 checked on load, so a damaged
 * checkpoint is refused, never trained on. resumePoint() picks the newest intact one, after
 * finishing a swap that a crash interrupted.
 */
import * as tf from '@tensorflow/tfjs';
import { copyFileSync, existsSync, linkSync, mkdirSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { recoverSwap, replaceDirAtomic, readJson } from '../util/fsx.js';
import { CHECKPOINT_FILES } from '../store/layout.js';
import { hasTensors, loadModelWeights, readTensors, saveModelWeights, writeTensors, type WeightSet } from '../model/tensors.js';
import { WeightsError } from '../model/errors.js';
import { ExpError } from '../errors.js';
import type { LoopState } from './state.js';

/** Where the weights that a checkpoint does not hold come from. */
export type BaseRef = { weights: 'none'; seed: number } | { weights: 'file'; path: string; md5: string; seed: number };

export interface CheckpointInfo {
  version: 2;
  epoch: number;
  state: LoopState;
  /** Which model weights the checkpoint holds; 'all' for version-1 checkpoints. */
  holds: WeightSet;
  base: BaseRef | null;
  /** Whether the optimiser's state is in it (a model-only export leaves it out). */
  optimizer: boolean;
  created: string;
}

const STATE = CHECKPOINT_FILES.state;

/** Saves the trainable weights, optimiser state (unless `withOptimizer` is false) and loop state as folder `dir`. */
export async function saveCheckpoint(dir: string, model: tf.LayersModel, optimizer: tf.Optimizer | null, state: LoopState, base: BaseRef): Promise<void> {
  await replaceDirAtomic(dir, async (tmp) => {
    await saveModelWeights(model, tmp, 'weights', 'trainable');
    if (optimizer) {
      const opt = await optimizer.getWeights();
      try {
        await writeTensors(tmp, 'optimizer', opt);
      } finally {
        // getWeights returns the optimiser's own variables plus a fresh iteration-count scalar;
        // that scalar is ours to dispose, or every checkpoint leaks one tensor.
        tf.dispose(opt.map((o) => o.tensor).filter((t) => !(t instanceof tf.Variable)));
      }
    }
    const info: CheckpointInfo = {
      version: 2,
      epoch: state.epoch,
      state,
      holds: 'trainable',
      base,
      optimizer: optimizer !== null,
      created: new Date().toISOString(),
    };
    writeFileSync(join(tmp, STATE), JSON.stringify(info, null, 1));
  });
}

export function hasCheckpoint(dir: string): boolean {
  return existsSync(join(dir, STATE)) && hasTensors(dir, 'weights');
}

/** The checkpoint's state.json, or a CHECKPOINT_FORMAT error naming it. */
export function readCheckpointInfo(dir: string): CheckpointInfo {
  const raw = readJson<Partial<CheckpointInfo> & { version?: number }>(join(dir, STATE));
  if (!raw || typeof raw.epoch !== 'number' || !raw.state || typeof raw.state.epoch !== 'number') {
    throw new WeightsError({
      code: 'CHECKPOINT_FORMAT',
      file: join(dir, STATE),
      message: "the checkpoint's state.json is missing, truncated or not a checkpoint state",
      fix: 'delete this checkpoint; exp falls back to another one, or starts over',
    });
  }
  const state = renamedFields(raw.state);
  if (raw.version === 2) return { ...(raw as CheckpointInfo), state };
  return { version: 2, epoch: raw.epoch, state, holds: 'all', base: null, optimizer: hasTensors(dir, 'optimizer'), created: '' };
}

/** The loop state with the fields renamed since older checkpoints were written (esBest is earlyStopBest), so they resume alike. */
function renamedFields(state: LoopState & { esBest?: number | null }): LoopState {
  const { esBest, ...rest } = state;
  return esBest === undefined || rest.earlyStopBest !== undefined ? rest : { ...rest, earlyStopBest: esBest };
}

/** Whether the checkpoint was trained on the same base weights that `base` names now. */
export function checkBase(dir: string, info: CheckpointInfo, base: BaseRef): void {
  if (info.holds === 'all' || info.base === null) return; // it holds every weight itself
  const same =
    info.base.weights === base.weights &&
    info.base.seed === base.seed &&
    (info.base.weights === 'none' || (base.weights === 'file' && info.base.md5 === base.md5));
  if (same) return;
  const what = (b: BaseRef): string => (b.weights === 'none' ? `random init (seed ${b.seed})` : `${b.path} (MD5 ${b.md5})`);
  throw new WeightsError({
    code: 'CHECKPOINT_MISMATCH',
    file: join(dir, STATE),
    message: `the checkpoint was trained on top of ${what(info.base)}, but the model's base weights are now ${what(base)}`,
    fix: 'restore the weights file the run started with, or train the run from scratch (exp run FILE --force)',
  });
}

/**
 * Restores the checkpoint into `model` (whose base weights must already be loaded), and the
 * optimiser's state into `optimizer` when given. Every file is read and verified before
 * anything is assigned, so a damaged checkpoint leaves model and optimiser as they were.
 */
export async function loadCheckpoint(dir: string, model: tf.LayersModel, optimizer?: tf.Optimizer, base?: BaseRef): Promise<CheckpointInfo> {
  const info = readCheckpointInfo(dir);
  if (base) checkBase(dir, info, base);
  const opt = optimizer && info.optimizer ? readTensors(dir, 'optimizer') : undefined; // verified before any weight is written
  try {
    loadModelWeights(model, dir, 'weights', info.holds);
    // setWeights keeps the tensors it is given (as the optimiser's variables' initial values).
    if (optimizer && opt) await optimizer.setWeights(opt);
  } finally {
    if (opt) tf.dispose(opt.map((o) => o.tensor));
  }
  return info;
}

/** A checkpoint that could not be used, and why (for the run's log). */
export interface Skipped {
  dir: string;
  reason: string;
}

/**
 * Loads the newest intact checkpoint of `candidates` (e.g. last, then best): a damaged one is
 * skipped with its reason, and the next is tried. Returns undefined (the model untouched)
 * when none is usable, so training starts over.
 */
export async function resumePoint(
  candidates: readonly string[],
  model: tf.LayersModel,
  optimizer: tf.Optimizer,
  base: BaseRef,
): Promise<{ dir: string; info: CheckpointInfo; skipped: Skipped[] } | { dir: null; skipped: Skipped[] }> {
  const skipped: Skipped[] = [];
  // Only the trainer (holding the folder's lock) calls this, so no swap is in progress.
  for (const dir of candidates) recoverSwap(dir);
  for (const dir of candidates) {
    if (!hasCheckpoint(dir)) continue;
    try {
      return { dir, info: await loadCheckpoint(dir, model, optimizer, base), skipped };
    } catch (e) {
      if (e instanceof WeightsError && e.code === 'CHECKPOINT_MISMATCH') throw e; // the user must decide
      if (!(e instanceof ExpError)) throw e;
      skipped.push({ dir, reason: e.message.split('\n')[0]! });
    }
  }
  return { dir: null, skipped };
}

/**
 * Stages the checkpoint in `dir` for upload (queued runs): hard links to its files in a
 * sibling folder `upload-<label>`, made at once, so the upload reads one consistent
 * checkpoint however many saves follow before it runs. Returns the folder's name.
 */
export function stageForUpload(dir: string): string {
  const label = `${Date.now()}`;
  const parent = join(dir, '..');
  // Only the newest staged checkpoint matters; older ones would keep old files alive while a
  // tracking server is down. The sink skips an event whose folder is gone.
  for (const f of readdirSync(parent)) if (f.startsWith('upload-')) rmSync(join(parent, f), { recursive: true, force: true });
  const staged = join(parent, `upload-${label}`);
  mkdirSync(staged, { recursive: true });
  for (const f of readdirSync(dir)) {
    try {
      linkSync(join(dir, f), join(staged, f));
    } catch {
      copyFileSync(join(dir, f), join(staged, f));
    }
  }
  return `upload-${label}`;
}
