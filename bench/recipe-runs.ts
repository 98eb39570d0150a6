/**
 * The recipe, trained end to end by exp and by a peer framework on the same data: the same
 * synthetic Planet-style JPEGs, split, tag order and initial base weights. `npm run parity`
 * compares what they learn; the bench's epoch section compares how fast an epoch goes.
 *
 * Peers are Python scripts (bench/parity/keras_recipe.py, torch_recipe.py) taking the same
 * arguments and printing one JSON object (PeerResult) on their last line.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { log, ROOT } from './measure.js';

export interface RecipeArgs {
  seeds: number;
  epochs: number;
  size: number;
  count: number;
  batch: number;
}

/** One trained run, from either side. */
export interface RecipeResult {
  seed: number;
  val_loss: number;
  val_f2: number;
  per_tag: Record<string, number>;
  /** Mean over the epochs of training images per second (augmentation included, validation not). */
  train_img_s: number;
  best_epoch: number;
  seconds: number;
  /** Per epoch: seconds of training, and of the whole epoch (training + validation). */
  train_s: number[];
  epoch_s: number[];
  train_images: number;
  val_images: number;
  tuned?: number;
}

const BIN = join(ROOT, 'bin', 'exp.js');

function missingHint(cmd: string): string {
  if (cmd.includes('.venv')) return 'the Python virtualenv is not set up: run `bash scripts/setup-venv.sh` (npm run parity and npm run test:ci run it)';
  if (cmd === process.execPath || cmd.endsWith('exp.js')) return 'run `npm ci` first (it builds dist/)';
  return `install ${cmd} or put it on PATH`;
}

export function run(cmd: string, args: string[], env: NodeJS.ProcessEnv = {}): string {
  const r = spawnSync(cmd, args, { cwd: ROOT, encoding: 'utf8', env: { ...process.env, ...env }, maxBuffer: 64 * 2 ** 20, stdio: ['ignore', 'pipe', 'pipe'] });
  // A program that could not start at all (no .venv yet) has no status and no output: say what is missing.
  if (r.error !== undefined) throw new Error(`${cmd} could not be started (${r.error.message}): ${missingHint(cmd)}`);
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')} failed (${r.status}):\n${r.stderr.slice(-3000)}\n${r.stdout.slice(-2000)}`);
  return r.stdout;
}

/** Shared random base weights for both: VGG16 without top, Glorot-initialised by Keras (seed 0), in Keras's HDF5 layout. */
export function baseWeights(python: string, dir: string, size: number): string {
  const file = join(dir, `vgg16-random-notop-${size}.h5`);
  if (existsSync(file)) return file;
  log('writing shared base weights (Keras VGG16, random, seed 0)');
  run(python, [
    '-c',
    [
      'import os, sys; os.environ["TF_CPP_MIN_LOG_LEVEL"] = "3"',
      'import h5py, keras',
      'from keras.src.legacy.saving import legacy_h5_format',
      'keras.utils.set_random_seed(0)',
      `m = keras.applications.VGG16(include_top=False, weights=None, input_shape=(${size}, ${size}, 3))`,
      'f = h5py.File(sys.argv[1], "w"); legacy_h5_format.save_weights_to_hdf5_group(f, m); f.close()',
    ].join('\n'),
    file,
  ]);
  return file;
}

/** Where the synthetic dataset of `count` images lives (one folder per count: data is made once per folder). */
export const dataDir = (dir: string, a: RecipeArgs): string => join(dir, `data-${a.count}`);

/** The recipe as an experiment file in `dir` (data in dataDir), swept over the training seed. */
export function experiment(dir: string, a: RecipeArgs, weights: string, backend = 'auto'): string {
  const file = join(dir, `recipe-${a.size}.yaml`);
  writeFileSync(
    file,
    [
      '# The recipe at a small size on synthetic data; only the training seed varies.',
      'name: parity',
      'data:',
      `  path: ${dataDir(dir, a)}`,
      `  image_size: ${a.size}`,
      '  resize: nearest',
      '  split: { test_size: 0.3, seed: 1 }',
      `  synth: { count: ${a.count}, seed: 0, size: 256 }`,
      'model:',
      `  weights: ${weights}`,
      '  frozen_blocks: 4',
      '  preprocessing: caffe',
      '  head: { pooling: flatten, units: 128, activation: relu, initializer: he_uniform, dropout: 0 }',
      'augmentation: { horizontal_flip: true, vertical_flip: true, rotation_range: 90, fill_mode: nearest, dihedral: false }',
      `training: { optimizer: adam, learning_rate: 0.001, batch_size: ${a.batch}, epochs: ${a.epochs} }`,
      'checkpoint: { monitor: val_loss, mode: min, save_best: true }',
      'evaluation: { tune_thresholds: true, tta: false }',
      `backend: ${backend}`,
      'sweep:',
      `  grid: { training.seed: [${Array.from({ length: a.seeds }, (_, i) => i + 1).join(', ')}] }`,
    ].join('\n') + '\n',
  );
  return file;
}

/** Trains every seed with exp (one worker) into `runs`; returns them by seed, and the first run's folder. */
export function runExp(file: string, runs: string): { results: RecipeResult[]; first: string } {
  run(process.execPath, [BIN, 'run', file, '--workers', '1'], { EXP_RUNS_DIR: runs, MLFLOW_TRACKING_URI: '' });
  const index = JSON.parse(run(process.execPath, [BIN, 'runs', '--json'], { EXP_RUNS_DIR: runs })) as { dir: string; params: Record<string, unknown> }[];
  const results = index
    .map((r): RecipeResult => {
      const s = JSON.parse(readFileSync(join(r.dir, 'summary.json'), 'utf8')) as {
        final: Record<string, number>;
        best: { epoch: number };
        images_per_second: { train: number };
        duration_s: number;
        tags: string[];
      };
      const lines = (f: string): Record<string, unknown>[] =>
        readFileSync(join(r.dir, f), 'utf8')
          .split('\n')
          .filter(Boolean)
          .map((l) => JSON.parse(l) as Record<string, unknown>);
      const count = (f: string): number =>
        readFileSync(join(r.dir, 'split', f), 'utf8')
          .split('\n')
          .filter(Boolean).length;
      const trainImages = count('train.txt');
      // The epoch's training images per second, as the trainer logged it (system metrics in the event log).
      // (System events also carry CPU and memory samples, without this key.)
      const ips = lines('events.jsonl').flatMap((e) => {
        const v = e.type === 'system' ? (e.metrics as Record<string, number>)['system/images_per_second'] : undefined;
        return v === undefined ? [] : [v];
      });
      return {
        seed: Number(r.params['training.seed']),
        val_loss: s.final.val_loss!,
        val_f2: s.final.val_fbeta!,
        best_epoch: s.best.epoch,
        seconds: s.duration_s,
        per_tag: Object.fromEntries(s.tags.map((t) => [t, s.final[`val_fbeta.${t}`]!])),
        train_img_s: s.images_per_second.train,
        train_s: ips.map((v) => trainImages / v),
        epoch_s: lines('metrics.jsonl').map((m) => m.seconds as number),
        train_images: trainImages,
        val_images: count('val.txt'),
        tuned: s.final.val_fbeta_tuned,
      };
    })
    .sort((x, y) => x.seed - y.seed);
  return { results, first: index[0]!.dir };
}

/** Trains one seed with a peer script on what exp's first run used. */
export function runPeer(
  python: string,
  script: string,
  dir: string,
  a: RecipeArgs,
  first: string,
  weights: string,
  seed: number,
): RecipeResult & { framework: string } {
  const out = run(python, [
    join(ROOT, 'bench', 'parity', script),
    ...['--data', dataDir(dir, a), '--split', join(first, 'split'), '--tags', join(first, 'tags.txt'), '--weights', weights],
    ...['--size', String(a.size), '--epochs', String(a.epochs), '--batch', String(a.batch), '--seed', String(seed), '--workdir', dir],
  ]);
  const k = JSON.parse(out.trim().split('\n').at(-1)!) as {
    val_loss: number;
    val_f2: number;
    per_tag_f2: Record<string, number>;
    train_img_s: number;
    best_epoch: number;
    seconds: number;
    train_s: number[];
    epoch_s: number[];
    train: number;
    val: number;
    framework: string;
  };
  return {
    seed,
    framework: k.framework,
    val_loss: k.val_loss,
    val_f2: k.val_f2,
    per_tag: k.per_tag_f2,
    train_img_s: k.train_img_s,
    best_epoch: k.best_epoch,
    seconds: k.seconds,
    train_s: k.train_s,
    epoch_s: k.epoch_s,
    train_images: k.train,
    val_images: k.val,
  };
}
