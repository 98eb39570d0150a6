/**
 * Checkpoints: a folder with the model's weights, the optimiser's state (Adam moments,
 * iteration count), and the loop state (epoch, history, best, learning rate). A checkpoint
 * is built under a temporary name and swapped in, so `checkpoints/last` is always whole:
 * resume sees either the previous epoch's checkpoint or the new one, never a mix.
 */
import * as tf from '@tensorflow/tfjs';
import { existsSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { replaceDirAtomic, readJson } from '../util/fsx.js';
import { hasTensors, loadModelWeights, readTensors, saveModelWeights, writeTensors } from '../model/tensors.js';
import type { LoopState } from './loop.js';

export interface CheckpointInfo { epoch: number; state: LoopState }

/** Saves model weights (by variable name), optimiser weights and loop state as folder `dir`. */
export async function saveCheckpoint(dir: string, model: tf.LayersModel, optimizer: tf.Optimizer, state: LoopState): Promise<void> {
  await replaceDirAtomic(dir, async (tmp) => {
    await saveModelWeights(model, tmp);
    const opt = await optimizer.getWeights();
    try {
      await writeTensors(tmp, 'optimizer', opt);
    } finally {
      // getWeights returns the optimiser's own variables plus a fresh iteration-count scalar;
      // that scalar is ours to dispose, or every checkpoint leaks one tensor.
      tf.dispose(opt.map((o) => o.tensor).filter((t) => !(t instanceof tf.Variable)));
    }
    writeFileSync(join(tmp, 'state.json'), JSON.stringify({ version: 1, epoch: state.epoch, state }, null, 1));
  });
}

export function hasCheckpoint(dir: string): boolean {
  return existsSync(join(dir, 'state.json')) && hasTensors(dir, 'weights');
}

/** Restores weights into `model`, and the optimiser's state into `optimizer` when given. */
export async function loadCheckpoint(dir: string, model: tf.LayersModel, optimizer?: tf.Optimizer): Promise<CheckpointInfo> {
  const info = readJson<CheckpointInfo>(join(dir, 'state.json'));
  if (!info) throw new Error(`checkpoint ${dir} has no readable state.json`);
  loadModelWeights(model, dir);
  if (optimizer && hasTensors(dir, 'optimizer')) {
    const opt = readTensors(dir, 'optimizer');
    // setWeights keeps the tensors it is given (as the optimiser's variables' initial values).
    await optimizer.setWeights(opt);
    tf.dispose(opt.map((o) => o.tensor));
  }
  return { epoch: info.epoch, state: info.state };
}
