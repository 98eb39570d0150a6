/**
 * `npm run parity`: exp against an independent Keras implementation of the recipe
 * (bench/parity/keras_recipe.py, TensorFlow from PyPI in .venv), on the synthetic Planet-style
 * dataset, with the same images, split, tag order, initial base weights and settings, over
 * several training seeds each. Prints per-seed rows, means and spreads, per-tag F2, and the gap;
 * `--json` prints {exp: {val_loss, val_f2, ...}, keras: {...}} as its last line. Asserts nothing.
 *
 *   npm run parity                              3 seeds x (exp, Keras), ~15 min on 2 cores
 *   npm run parity -- --seeds 1 --epochs 2      a smoke run
 *   npm run parity -- --json                    the summary as JSON on the last line
 *
 * Work folder: $EXP_PARITY_DIR or ~/.cache/exp/parity (the dataset and base weights are reused).
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { table, type Column, type Row } from './table.js';
import { log } from './measure.js';

const ROOT = new URL('..', import.meta.url).pathname;
const PYTHON = process.env.EXP_PARITY_PYTHON ?? join(ROOT, '.venv', 'bin', 'python');

interface Args {
  seeds: number;
  epochs: number;
  size: number;
  count: number;
  batch: number;
  json: boolean;
}

function parseArgs(argv: readonly string[]): Args {
  const a: Args = { seeds: 3, epochs: 15, size: 32, count: 2000, batch: 32, json: false };
  for (let i = 0; i < argv.length; i++) {
    const k = argv[i]!;
    if (k === '--json') {
      a.json = true;
      continue;
    }
    const key = k.replace(/^--/, '') as keyof Args;
    const v = Number(argv[++i]);
    if (!(key in a) || key === 'json' || !Number.isInteger(v) || v < 1)
      throw new Error(`usage: npm run parity -- [--seeds N] [--epochs N] [--size PX] [--count IMAGES] [--batch N] [--json] (bad: ${k})`);
    a[key] = v as never;
  }
  return a;
}

interface Result {
  seed: number;
  val_loss: number;
  val_f2: number;
  per_tag: Record<string, number>;
  train_img_s: number;
  best_epoch: number;
  seconds: number;
}

const mean = (v: readonly number[]): number => v.reduce((s, x) => s + x, 0) / v.length;
const sd = (v: readonly number[]): number => (v.length < 2 ? 0 : Math.sqrt(v.reduce((s, x) => s + (x - mean(v)) ** 2, 0) / (v.length - 1)));

function run(cmd: string, args: string[], env: NodeJS.ProcessEnv = {}): string {
  const r = spawnSync(cmd, args, { cwd: ROOT, encoding: 'utf8', env: { ...process.env, ...env }, maxBuffer: 64 * 2 ** 20, stdio: ['ignore', 'pipe', 'pipe'] });
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')} failed (${r.status}):\n${r.stderr.slice(-3000)}\n${r.stdout.slice(-2000)}`);
  return r.stdout;
}

/** Shared random base weights for both: VGG16 without top, Glorot-initialised by Keras (seed 0), in Keras's HDF5 layout. */
function baseWeights(dir: string, size: number): string {
  const file = join(dir, `vgg16-random-notop-${size}.h5`);
  if (existsSync(file)) return file;
  log('writing shared base weights (Keras VGG16, random, seed 0)');
  run(PYTHON, [
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

function experiment(dir: string, a: Args, weights: string): string {
  const file = join(dir, 'parity.yaml');
  writeFileSync(
    file,
    [
      '# npm run parity: the recipe at a small size on synthetic data; only the training seed varies.',
      'name: parity',
      'data:',
      `  path: ${join(dir, 'data')}`,
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
      'sweep:',
      `  grid: { training.seed: [${Array.from({ length: a.seeds }, (_, i) => i + 1).join(', ')}] }`,
    ].join('\n') + '\n',
  );
  return file;
}

function main(): void {
  const a = parseArgs(process.argv.slice(2));
  const dir = process.env.EXP_PARITY_DIR ?? join(homedir(), '.cache', 'exp', 'parity');
  mkdirSync(dir, { recursive: true });
  const runs = join(dir, 'runs');
  rmSync(runs, { recursive: true, force: true });
  const weights = baseWeights(dir, a.size);
  const file = experiment(dir, a, weights);

  log(`exp: ${a.seeds} seed(s), ${a.epochs} epochs, ${a.count} images at ${a.size} px`);
  run(process.execPath, [join(ROOT, 'bin', 'exp.js'), 'run', file, '--workers', '1'], { EXP_RUNS_DIR: runs });
  const index = JSON.parse(run(process.execPath, [join(ROOT, 'bin', 'exp.js'), 'runs', '--json'], { EXP_RUNS_DIR: runs })) as {
    dir: string;
    params: Record<string, unknown>;
  }[];
  const exp: Result[] = index
    .map((r) => {
      const s = JSON.parse(readFileSync(join(r.dir, 'summary.json'), 'utf8')) as {
        final: Record<string, number>;
        best: { epoch: number };
        images_per_second: { train: number };
        duration_s: number;
        tags: string[];
      };
      return {
        seed: Number(r.params['training.seed']),
        val_loss: s.final.val_loss!,
        val_f2: s.final.val_fbeta!,
        best_epoch: s.best.epoch,
        seconds: s.duration_s,
        per_tag: Object.fromEntries(s.tags.map((t) => [t, s.final[`val_fbeta.${t}`]!])),
        train_img_s: s.images_per_second.train,
        tuned: s.final.val_fbeta_tuned,
      };
    })
    .sort((x, y) => x.seed - y.seed);
  const first = index[0]!.dir;

  const keras: Result[] = [];
  for (const r of exp) {
    log(`Keras: seed ${r.seed}`);
    const out = run(PYTHON, [
      join(ROOT, 'bench', 'parity', 'keras_recipe.py'),
      '--data',
      join(dir, 'data'),
      '--split',
      join(first, 'split'),
      '--tags',
      join(first, 'tags.txt'),
      '--weights',
      weights,
      '--size',
      String(a.size),
      '--epochs',
      String(a.epochs),
      '--batch',
      String(a.batch),
      '--seed',
      String(r.seed),
      '--workdir',
      dir,
    ]);
    const k = JSON.parse(out.trim().split('\n').at(-1)!) as {
      val_loss: number;
      val_f2: number;
      per_tag_f2: Record<string, number>;
      train_img_s: number;
      best_epoch: number;
      seconds: number;
      keras: string;
    };
    keras.push({
      seed: r.seed,
      val_loss: k.val_loss,
      val_f2: k.val_f2,
      per_tag: k.per_tag_f2,
      train_img_s: k.train_img_s,
      best_epoch: k.best_epoch,
      seconds: k.seconds,
    });
    log(`  val_loss ${k.val_loss.toFixed(4)}, F2 ${k.val_f2.toFixed(4)} (Keras ${k.keras})`);
  }

  const summary = (rs: readonly Result[]): Record<string, number> => ({
    val_loss: mean(rs.map((r) => r.val_loss)),
    val_loss_sd: sd(rs.map((r) => r.val_loss)),
    val_f2: mean(rs.map((r) => r.val_f2)),
    val_f2_sd: sd(rs.map((r) => r.val_f2)),
    train_img_s: mean(rs.map((r) => r.train_img_s)),
  });
  const se = summary(exp),
    sk = summary(keras);
  const cols: Column[] = [
    { key: 'name', title: 'run' },
    { key: 'val_loss', title: 'val loss', digits: 4 },
    { key: 'val_f2', title: 'F2 (exact)', digits: 4 },
    { key: 'best_epoch', title: 'best epoch' },
    { key: 'train_img_s', title: 'train img/s' },
    { key: 'seconds', title: 'seconds' },
  ];
  const rows: Row[] = [
    ...exp.map((r) => ({ section: 'parity', name: `exp seed ${r.seed}`, ...r, per_tag: null })),
    {
      section: 'parity',
      name: 'exp mean ± sd',
      val_loss: `${se.val_loss!.toFixed(4)} ± ${se.val_loss_sd!.toFixed(4)}`,
      val_f2: `${se.val_f2!.toFixed(4)} ± ${se.val_f2_sd!.toFixed(4)}`,
      train_img_s: se.train_img_s!,
    },
    ...keras.map((r) => ({ section: 'parity', name: `Keras seed ${r.seed}`, ...r, per_tag: null })),
    {
      section: 'parity',
      name: 'Keras mean ± sd',
      val_loss: `${sk.val_loss!.toFixed(4)} ± ${sk.val_loss_sd!.toFixed(4)}`,
      val_f2: `${sk.val_f2!.toFixed(4)} ± ${sk.val_f2_sd!.toFixed(4)}`,
      train_img_s: sk.train_img_s!,
    },
  ];
  const gapF2 = se.val_f2! - sk.val_f2!;
  const lossRatio = se.val_loss! / sk.val_loss! - 1;
  process.stdout.write(
    table(`exp vs Keras: the recipe at ${a.size} px, ${a.count} synthetic images, ${a.epochs} epochs, batch ${a.batch}, ${a.seeds} seed(s) each`, cols, rows, [
      `F2 gap (exp - Keras): ${gapF2 >= 0 ? '+' : ''}${gapF2.toFixed(4)} (target within 0.01); val loss: exp ${lossRatio >= 0 ? '+' : ''}${(100 * lossRatio).toFixed(1)}% (target within 5%)`,
      'Both: best val_loss checkpoint reloaded, F2 exact over the validation split at threshold 0.5, same split, tags, base weights.',
    ]) + '\n',
  );
  const tags = Object.keys(exp[0]!.per_tag);
  process.stdout.write(
    table(
      'per-tag F2 (mean over seeds)',
      [
        { key: 'name', title: 'tag' },
        { key: 'exp', title: 'exp', digits: 3 },
        { key: 'keras', title: 'Keras', digits: 3 },
      ],
      tags.map((t) => ({
        section: 'parity-tags',
        name: t,
        exp: mean(exp.map((r) => r.per_tag[t] ?? 0)),
        keras: mean(keras.map((r) => r.per_tag[t] ?? 0)),
      })),
    ) + '\n',
  );
  if (a.json) process.stdout.write(`${JSON.stringify({ exp: se, keras: sk, gap: { val_f2: gapF2, val_loss_relative: lossRatio }, settings: a })}\n`);
}

main();
