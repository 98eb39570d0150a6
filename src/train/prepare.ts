/**
 * Everything a run needs before its first batch, from its folder and config: the data (made
 * when the config asks for synthetic data, decoded through the cache), the backend, the split
 * (saved, or reused on resume), the tag vocabulary, the model with its base weights, the
 * optimiser and the loop state, resumed from the newest intact checkpoint when there is one.
 */
import type * as tf from '@tensorflow/tfjs';
import type { RunConfig } from '../config/normalise.js';
import type { PointMeta } from '../store/types.js';
import { writeTags } from '../store/tags.js';
import { ExpError } from '../errors.js';
import { selectBackend, type BackendInfo } from '../backend/select.js';
import { loadDataset, describeReport, type Dataset } from '../data/planet.js';
import type { ParamCounts } from '../model/vgg16.js';
import { resumePoint, type BaseRef } from '../core/checkpoint.js';
import { buildWithBase, setDropoutStep } from '../core/model.js';
import { ensureDataset, resolveSplit, type Split } from '../core/data.js';
import { initialState, makeOptimizer, type LoopState } from './loop.js';
import { CheckpointPolicy } from './checkpoint-policy.js';

export interface Prepared {
  backend: BackendInfo;
  ds: Dataset;
  split: Split;
  model: tf.LayersModel;
  optimizer: tf.Optimizer;
  base: BaseRef;
  counts: ParamCounts;
  state: LoopState;
  /** Whether the state came from a checkpoint. */
  resumed: boolean;
}

export interface PrepareContext {
  dir: string;
  cfg: RunConfig;
  point: PointMeta;
  cacheDir: string | undefined;
  log: (line: string) => void;
  /** Called once the backend is chosen (the run record names it). */
  onBackend: (backend: BackendInfo) => void;
}

/** training.require_gpu on a machine where the backend runs on the CPU or wasm: a failure, with how to get a GPU. */
function checkGpu(cfg: RunConfig, backend: BackendInfo): void {
  if (!cfg.training.require_gpu || (backend.device !== 'cpu' && !backend.device.startsWith('wasm'))) return;
  throw new ExpError({
    code: 'NO_GPU',
    message: `training.require_gpu is set but ${backend.name} runs on the ${backend.device === 'cpu' ? 'CPU' : 'wasm runtime'} here${backend.note ? ` (${backend.note})` : ''}`,
    fix: 'run it where an NVIDIA GPU is visible, with the GPU build (bash scripts/build-native-backend.sh --gpu), or set training.require_gpu: false',
    exit: 'failed',
  });
}

async function backendFor(c: PrepareContext): Promise<BackendInfo> {
  await ensureDataset(c.cfg, c.log);
  const backend = await selectBackend(c.cfg.backend);
  c.onBackend(backend);
  const threads = `${backend.threads} thread${backend.threads === 1 ? '' : 's'}`;
  c.log(`run ${c.point.name} (key ${c.point.key}) on ${backend.name} (${backend.device}, ${threads})\n`);
  if (backend.note) c.log(`note: ${backend.name}: ${backend.note}\n`);
  checkGpu(c.cfg, backend);
  return backend;
}

async function dataFor(c: PrepareContext): Promise<{ ds: Dataset; split: Split }> {
  const ds = await loadDataset(c.cfg.data, { cacheDir: c.cacheDir, onProgress: (m) => c.log(`data: ${m}\n`) });
  for (const line of describeReport(ds.report)) c.log(`${line}\n`);
  const split = resolveSplit(c.dir, ds, c.cfg);
  writeTags(c.dir, ds.tags);
  c.log(`split: ${split.train.length} train / ${split.val.length} validation (hash ${split.hash})\n`);
  return { ds, split };
}

/** The loop state of the newest intact checkpoint (last, then best), or undefined to start afresh; says which in the log. */
async function resumeInto(c: PrepareContext, model: tf.LayersModel, optimizer: tf.Optimizer, base: BaseRef): Promise<LoopState | undefined> {
  const dirs = new CheckpointPolicy(c.dir, c.cfg, { model, optimizer, base }, undefined);
  const resume = await resumePoint([dirs.lastDir, dirs.bestDir], model, optimizer, base);
  for (const s of resume.skipped)
    c.log(`warning: checkpoint ${s.dir} is not usable (${s.reason}); ${resume.dir ? `resuming from ${resume.dir} instead` : 'trying the next'}\n`);
  if (!resume.dir) {
    if (resume.skipped.length > 0) c.log('warning: no usable checkpoint: training starts over from the base weights\n');
    return undefined;
  }
  const state = resume.info.state;
  setDropoutStep(model, state.dropoutStep ?? 0);
  const where = state.position ? `inside epoch ${state.position.epoch}, after batch ${state.position.batch}` : `after epoch ${state.epoch}`;
  c.log(`resuming from ${resume.dir === dirs.lastDir ? 'checkpoints/last' : 'checkpoints/best'} ${where}\n`);
  return state;
}

/** Prepares the run; on resume the model, optimiser and state are the checkpoint's. */
export async function prepareRun(c: PrepareContext): Promise<Prepared> {
  const backend = await backendFor(c);
  const { ds, split } = await dataFor(c);
  const { model, base, counts, loaded } = await buildWithBase(c.cfg, ds.tags.length);
  if (loaded) c.log(`weights: ${loaded}\n`);
  const fresh = initialState(c.cfg);
  const optimizer = makeOptimizer(c.cfg, fresh.lr);
  const resumed = await resumeInto(c, model, optimizer, base);
  const blocks = c.cfg.model.trainable_blocks.join(', ');
  const size = `${c.cfg.data.image_size}x${c.cfg.data.image_size}`;
  c.log(
    `model: VGG16 ${size}, trainable blocks [${blocks}], ${counts.trainable.toLocaleString('en')} of ${counts.total.toLocaleString('en')} parameters trainable\n`,
  );
  return { backend, ds, split, model, optimizer, base, counts, state: resumed ?? fresh, resumed: resumed !== undefined };
}
