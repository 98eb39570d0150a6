/**
 * Section "cache": what the shared feature cache buys. An 8-point sweep (learning rate x head
 * units) of the recipe with dihedral augmentation (flips + quarter turns: 8 exact views), blocks
 * 1-4 frozen, trained by exp with the cache, by exp without it, and by Keras (model.fit, the
 * bench's Keras recipe) one point after another, on the same images, split and base weights
 * (bench/recipe-runs.ts); then one run of the recipe with its continuous rotation (validation
 * features cached only), epoch time with and without; and the cache's size per 1,000 images.
 */
import { mkdirSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { findPython, log, round, tempDir } from './measure.js';
import { baseWeights, dataDir, run, type RecipeArgs } from './recipe-runs.js';
import type { Column, Row } from './table.js';

const ROOT = new URL('..', import.meta.url).pathname;
const BIN = join(ROOT, 'bin', 'exp.js');

export const CACHE_COLUMNS: Column[] = [
  { key: 'name', title: 'how', align: 'left' },
  { key: 'points', title: 'points' },
  { key: 'seconds', title: 'wall s', digits: 1 },
  { key: 'epoch_s', title: 'epoch s', digits: 2 },
  { key: 'vs_keras', title: 'x Keras', digits: 2 },
  { key: 'vs_nocache', title: 'x no cache', digits: 2 },
  { key: 'val_f2', title: 'mean val F2', digits: 4 },
  { key: 'note', title: 'note', align: 'left' },
];

export interface CacheBenchOptions {
  size: number;
  count: number;
  batch: number;
  epochs: number;
  lrs: number[];
  units: number[];
}

function experiment(dir: string, o: CacheBenchOptions, weights: string, augmentation: string, sweep: boolean): string {
  const file = join(dir, `cache-${sweep ? 'sweep' : 'one'}-${augmentation.includes('dihedral: true') ? 'dihedral' : 'rotation'}.yaml`);
  writeFileSync(
    file,
    [
      'name: cachebench',
      `data: { path: ${dataDir(dir, { count: o.count } as RecipeArgs)}, image_size: ${o.size}, resize: nearest, split: { test_size: 0.3, seed: 1 }, synth: { count: ${o.count}, seed: 0, size: 256 } }`,
      `model: { weights: ${weights}, frozen_blocks: 4, preprocessing: caffe, head: { pooling: flatten, units: 128 } }`,
      `augmentation: ${augmentation}`,
      `training: { optimizer: adam, learning_rate: 0.001, batch_size: ${o.batch}, epochs: ${o.epochs}, seed: 1 }`,
      'checkpoint: { monitor: val_loss, mode: min, every_minutes: null }',
      'evaluation: { tune_thresholds: false }',
      'backend: auto',
      sweep ? `sweep: { grid: { training.learning_rate: [${o.lrs.join(', ')}], model.head.units: [${o.units.join(', ')}] } }` : '',
    ].join('\n') + '\n',
  );
  return file;
}

interface Point {
  dir: string;
  f2: number;
  epochs: number[];
}

/** Runs `exp run FILE --workers 1` with the cache in `cache`; returns its wall time and points. */
function expSweep(file: string, runs: string, cache: string, set: string[]): { seconds: number; points: Point[] } {
  const t0 = performance.now();
  run(process.execPath, [BIN, 'run', file, '--workers', '1', ...set.flatMap((s) => ['--set', s])], {
    EXP_RUNS_DIR: runs,
    EXP_CACHE_DIR: cache,
    MLFLOW_TRACKING_URI: '',
  });
  const seconds = (performance.now() - t0) / 1000;
  const index = JSON.parse(run(process.execPath, [BIN, 'runs', '--json'], { EXP_RUNS_DIR: runs })) as { dir: string }[];
  const points = index.map((r) => {
    const s = JSON.parse(readFileSync(join(r.dir, 'summary.json'), 'utf8')) as { final: Record<string, number> };
    const epochs = readFileSync(join(r.dir, 'metrics.jsonl'), 'utf8')
      .split('\n')
      .filter(Boolean)
      .map((l) => (JSON.parse(l) as { seconds: number }).seconds);
    return { dir: r.dir, f2: s.final.val_fbeta!, epochs };
  });
  return { seconds, points };
}

const mean = (v: number[]): number => v.reduce((a, b) => a + b, 0) / v.length;
/** Epoch seconds after the first (which also pays for tracing and allocation), over all points. */
const laterEpochs = (ps: Point[]): number => mean(ps.flatMap((p) => (p.epochs.length > 1 ? p.epochs.slice(1) : p.epochs)));

function duSize(dir: string): { bytes: number; files: number } {
  let bytes = 0;
  let files = 0;
  for (const e of readdirSync(dir, { recursive: true, withFileTypes: true })) {
    if (!e.isFile() || !e.name.endsWith('.feat')) continue;
    bytes += statSync(join(e.parentPath, e.name)).size;
    files++;
  }
  return { bytes, files };
}

/** Keras training every point one after another (a process per point, as a sweep tool calls it). */
function kerasSweep(python: string, dir: string, o: CacheBenchOptions, first: string, weights: string): { seconds: number; f2: number[] } {
  const t0 = performance.now();
  const f2: number[] = [];
  for (const lr of o.lrs)
    for (const units of o.units) {
      log(`cache: Keras lr ${lr} units ${units}`);
      const out = run(python, [
        join(ROOT, 'bench', 'parity', 'keras_recipe.py'),
        ...['--data', dataDir(dir, { count: o.count } as RecipeArgs), '--split', join(first, 'split'), '--tags', join(first, 'tags.txt'), '--weights', weights],
        ...['--size', String(o.size), '--epochs', String(o.epochs), '--batch', String(o.batch), '--seed', '1', '--workdir', dir],
        ...['--lr', String(lr), '--units', String(units), '--augment', 'dihedral'],
      ]);
      f2.push((JSON.parse(out.trim().split('\n').at(-1)!) as { val_f2: number }).val_f2);
    }
  return { seconds: (performance.now() - t0) / 1000, f2 };
}

const DIHEDRAL = '{ horizontal_flip: true, vertical_flip: true, rotation_range: 0, dihedral: true }';

interface Setup {
  keras: string;
  dir: string;
  weights: string;
  sweepFile: string;
  n: number;
}

/** The bench's folder, shared base weights, the dihedral sweep's file and its synthetic data (made outside every timing). */
function setUp(o: CacheBenchOptions, keras: string): Setup {
  const dir = tempDir('exp-bench-cache-');
  mkdirSync(dir, { recursive: true });
  const weights = baseWeights(keras, dir, o.size);
  const sweepFile = experiment(dir, o, weights, DIHEDRAL, true);
  const data = dataDir(dir, { count: o.count } as RecipeArgs);
  run(process.execPath, [BIN, 'data', 'synth', '--out', data, '--count', String(o.count), '--size', '256', '--seed', '0']);
  return { keras, dir, weights, sweepFile, n: o.lrs.length * o.units.length };
}

const NO_KERAS = 'skipped, no Python with Keras for the shared base weights (npm run test:ci puts it in .venv)';

export function benchFeatureCache(o: CacheBenchOptions): { rows: Row[]; notes: string[] } {
  const keras = findPython('keras');
  if (keras === undefined) return { rows: [], notes: [`cache: ${NO_KERAS}`] };
  const { dir, weights, sweepFile, n } = setUp(o, keras);
  log(`cache: exp sweep of ${n} points with the feature cache`);
  const cache = join(dir, 'cache');
  const withCache = expSweep(sweepFile, join(dir, 'runs-cache'), cache, []);
  log(`cache: exp sweep of ${n} points without it`);
  const without = expSweep(sweepFile, join(dir, 'runs-nocache'), cache, ['feature_cache.enabled=false']);
  const k = kerasSweep(keras, dir, o, withCache.points[0]!.dir, weights);
  const size = duSize(join(cache, 'features'));
  const rows: Row[] = [
    {
      section: 'cache',
      name: 'exp, feature cache',
      points: n,
      seconds: round(withCache.seconds, 1),
      epoch_s: round(laterEpochs(withCache.points), 2),
      vs_keras: round(k.seconds / withCache.seconds, 2),
      vs_nocache: round(without.seconds / withCache.seconds, 2),
      val_f2: round(mean(withCache.points.map((p) => p.f2)), 4),
      note: `${size.files} entries`,
    },
    {
      section: 'cache',
      name: 'exp, no cache',
      points: n,
      seconds: round(without.seconds, 1),
      epoch_s: round(laterEpochs(without.points), 2),
      vs_keras: round(k.seconds / without.seconds, 2),
      vs_nocache: 1,
      val_f2: round(mean(without.points.map((p) => p.f2)), 4),
    },
    { section: 'cache', name: 'Keras model.fit, one point after another', points: n, seconds: round(k.seconds, 1), vs_keras: 1, val_f2: round(mean(k.f2), 4) },
  ];
  // The recipe itself (continuous rotation): only validation features come from the cache.
  const rotFile = experiment(dir, o, weights, '{ horizontal_flip: true, vertical_flip: true, rotation_range: 90, dihedral: false }', false);
  log('cache: the recipe (rotation_range 90), with and without the cache');
  const rc = expSweep(rotFile, join(dir, 'runs-rot-cache'), join(dir, 'cache-rot'), []);
  const rn = expSweep(rotFile, join(dir, 'runs-rot-nocache'), join(dir, 'cache-rot'), ['feature_cache.enabled=false']);
  rows.push(
    {
      section: 'cache',
      name: 'recipe (rotation 90), validation cached',
      points: 1,
      seconds: round(rc.seconds, 1),
      epoch_s: round(laterEpochs(rc.points), 2),
      vs_nocache: round(laterEpochs(rn.points) / laterEpochs(rc.points), 2),
      val_f2: round(rc.points[0]!.f2, 4),
    },
    {
      section: 'cache',
      name: 'recipe (rotation 90), no cache',
      points: 1,
      seconds: round(rn.seconds, 1),
      epoch_s: round(laterEpochs(rn.points), 2),
      vs_nocache: 1,
      val_f2: round(rn.points[0]!.f2, 4),
    },
  );
  const perEntry = size.files ? size.bytes / size.files : 0;
  const notes = [
    `${n} points = learning rate [${o.lrs.join(', ')}] x head units [${o.units.join(', ')}]; ${o.count} synthetic images (70/30), ${o.size} px, batch ${o.batch}, ${o.epochs} epochs, blocks 1-4 frozen, dihedral with flips; exp --workers 1. x Keras = Keras wall s / this row's.`,
    "epoch s: mean epoch time after each point's first epoch. The first cached point computes its features (and the cache's fill time is in its summary.json); the others read them.",
    `Cache size: ${(perEntry / 1e3).toFixed(1)} KB per image and view at ${o.size} px (float32), i.e. ${((perEntry * 1000) / 1e6).toFixed(1)} MB per 1,000 images per view; ${size.files} entries, ${(size.bytes / 1e6).toFixed(1)} MB for this sweep.`,
  ];
  rmSync(dir, { recursive: true, force: true });
  return { rows, notes };
}

export const DTYPE_COLUMNS: Column[] = [
  { key: 'name', title: 'storage', align: 'left' },
  { key: 'entry_kb', title: 'KB per image and view', digits: 1 },
  { key: 'mb_per_1000', title: 'MB per 1,000 images (8 views)', digits: 1 },
  { key: 'seconds', title: 'wall s', digits: 1 },
  { key: 'val_f2', title: 'mean val F2', digits: 4 },
  { key: 'max_f2_diff', title: 'max |F2 diff| per point', digits: 4 },
];

/** Section "cache-dtype": the same sweep from a float32 and from a float16 cache: bytes per entry and the effect on F2. */
export function benchCacheDtype(o: CacheBenchOptions): { rows: Row[]; notes: string[] } {
  const keras = findPython('keras');
  if (keras === undefined) return { rows: [], notes: [`cache-dtype: ${NO_KERAS}`] };
  const { dir, sweepFile, n } = setUp(o, keras);
  const rows: Row[] = [];
  let ref: Point[] | undefined;
  for (const dtype of ['float32', 'float16']) {
    log(`cache-dtype: exp sweep of ${n} points, cache in ${dtype}`);
    const cache = join(dir, `cache-${dtype}`);
    const r = expSweep(sweepFile, join(dir, `runs-${dtype}`), cache, [`feature_cache.dtype=${dtype}`]);
    const size = duSize(join(cache, 'features'));
    const perEntry = size.files ? size.bytes / size.files : 0;
    // Point folders are `<name>-<key>`, and float16 is in the key: points are matched by name.
    const nameOf = (p: Point): string =>
      p.dir
        .split('/')
        .at(-1)!
        .replace(/-[0-9a-f]+$/, '');
    const f2 = new Map(r.points.map((p) => [nameOf(p), p.f2]));
    const diffs = (ref ?? []).map((p) => Math.abs((f2.get(nameOf(p)) ?? NaN) - p.f2));
    ref ??= r.points;
    rows.push({
      section: 'cache-dtype',
      name: dtype,
      entry_kb: round(perEntry / 1e3, 1),
      mb_per_1000: round((perEntry * 8 * 1000) / 1e6, 1),
      seconds: round(r.seconds, 1),
      val_f2: round(mean(r.points.map((p) => p.f2)), 4),
      ...(diffs.length ? { max_f2_diff: round(Math.max(...diffs), 4) } : {}),
    });
  }
  rmSync(dir, { recursive: true, force: true });
  const notes = [
    `${n} points as in section 8 (${o.count} images, ${o.size} px, ${o.epochs} epochs, dihedral), each sweep with a cache of its own. max |F2 diff|: per point, float16 against float32.`,
  ];
  return { rows, notes };
}
