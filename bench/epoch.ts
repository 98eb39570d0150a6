/**
 * Section "epoch": the recipe end to end, an epoch with augmentation and validation, in exp (as
 * `exp run` trains it), Keras (model.fit on a tf.data pipeline with Keras's augmentation layers)
 * and PyTorch (tensor-op augmentation, channels-last), on the same images, split and base
 * weights (bench/recipe-runs.ts). The last epoch of each is reported: the first also pays for
 * tracing, allocation and oneDNN's primitive creation, which a real run pays once.
 */
import { mkdirSync, rmSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { findPython, log, round } from './measure.js';
import { baseWeights, experiment, runExp, runPeer, type RecipeArgs, type RecipeResult } from './recipe-runs.js';
import type { Column, Row } from './table.js';

export const EPOCH_COLUMNS: Column[] = [
  { key: 'name', title: 'run', align: 'left' },
  { key: 'images', title: 'train/val' },
  { key: 'train_img_s', title: 'train img/s', digits: 2 },
  { key: 'epoch_s', title: 'epoch s', digits: 1 },
  { key: 'vs_keras', title: 'x Keras', digits: 2 },
  { key: 'vs_torch', title: 'x PyTorch', digits: 2 },
];

export interface EpochOptions extends Pick<RecipeArgs, 'size' | 'batch' | 'count' | 'epochs'> {
  backend: string;
}

export function benchEpoch(o: EpochOptions): { rows: Row[]; notes: string[] } {
  const notes: string[] = [];
  const keras = findPython('keras');
  if (keras === undefined) return { rows: [], notes: ['epoch: skipped, no Python with Keras for the shared base weights (npm run test:ci puts it in .venv)'] };
  const dir = process.env.EXP_BENCH_EPOCH_DIR ?? join(homedir(), '.cache', 'exp', 'bench-epoch');
  mkdirSync(dir, { recursive: true });
  const runs = join(dir, 'runs');
  rmSync(runs, { recursive: true, force: true });
  const a: RecipeArgs = { seeds: 1, ...o };
  const weights = baseWeights(keras, dir, a.size);
  log(`epoch: exp, ${a.epochs} epochs of ${a.count} images (70/30) at ${a.size} px, batch ${a.batch}, backend ${o.backend}`);
  const { results, first } = runExp(experiment(dir, a, weights, o.backend), runs);
  const sides: { name: string; r: RecipeResult }[] = [{ name: `exp (${o.backend})`, r: results[0]! }];
  try {
    log('epoch: Keras');
    const k = runPeer(keras, 'keras_recipe.py', dir, a, first, weights, 1);
    sides.push({ name: k.framework, r: k });
  } catch (e) {
    notes.push(`epoch: Keras failed: ${(e as Error).message.split('\n').slice(0, 3).join(' ')}`);
  }
  const torch = findPython('torch');
  if (torch === undefined) notes.push('epoch: PyTorch skipped (no Python with torch; see the torch section).');
  else {
    try {
      // The peer reads the Keras-layout base weights with h5py.
      log('epoch: PyTorch');
      const t = runPeer(torch, 'torch_recipe.py', dir, a, first, weights, 1);
      sides.push({ name: `${t.framework} (channels-last)`, r: t });
    } catch (e) {
      notes.push(`epoch: PyTorch failed: ${(e as Error).message.split('\n').slice(0, 3).join(' ')}`);
    }
  }
  const last = (v: number[]): number => v[v.length - 1]!;
  const ips = (r: RecipeResult): number => r.train_images / last(r.train_s);
  const peer = (prefix: string): RecipeResult | undefined => sides.find((s) => s.name.startsWith(prefix))?.r;
  const rows: Row[] = sides.map(({ name, r }) => ({
    section: 'epoch',
    name,
    images: `${r.train_images}/${r.val_images}`,
    train_img_s: round(ips(r), 3),
    epoch_s: round(last(r.epoch_s), 2),
    train_s: r.train_s.map((s) => round(s, 2)),
    epoch_s_all: r.epoch_s.map((s) => round(s, 2)),
    vs_keras: peer('Keras') ? round(last(peer('Keras')!.epoch_s) / last(r.epoch_s), 3) : null,
    vs_torch: peer('PyTorch') ? round(last(peer('PyTorch')!.epoch_s) / last(r.epoch_s), 3) : null,
  }));
  notes.push(
    `Epoch ${a.epochs} of ${a.epochs} (the first pays for tracing and allocation). x Keras / x PyTorch = their epoch seconds / this row's: above 1 is faster than that peer. ` +
      'Augmentation (rotation, flips) and validation included; image decoding is not (each loads the images once, before training).',
  );
  return { rows, notes };
}
