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
import { mkdirSync, rmSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { table, type Column, type Row } from './table.js';
import { log, ROOT } from './measure.js';
import { baseWeights, experiment, runExp, runPeer, type RecipeArgs, type RecipeResult } from './recipe-runs.js';

const PYTHON = process.env.EXP_PARITY_PYTHON ?? join(ROOT, '.venv', 'bin', 'python');

interface Args extends RecipeArgs {
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

const mean = (v: readonly number[]): number => v.reduce((s, x) => s + x, 0) / v.length;
const sd = (v: readonly number[]): number => (v.length < 2 ? 0 : Math.sqrt(v.reduce((s, x) => s + (x - mean(v)) ** 2, 0) / (v.length - 1)));

function main(): void {
  const a = parseArgs(process.argv.slice(2));
  const dir = process.env.EXP_PARITY_DIR ?? join(homedir(), '.cache', 'exp', 'parity');
  mkdirSync(dir, { recursive: true });
  const runs = join(dir, 'runs');
  rmSync(runs, { recursive: true, force: true });
  const weights = baseWeights(PYTHON, dir, a.size);
  const file = experiment(dir, a, weights);

  log(`exp: ${a.seeds} seed(s), ${a.epochs} epochs, ${a.count} images at ${a.size} px`);
  const { results: exp, first } = runExp(file, runs);
  const keras: RecipeResult[] = [];
  for (const r of exp) {
    log(`Keras: seed ${r.seed}`);
    const k = runPeer(PYTHON, 'keras_recipe.py', dir, a, first, weights, r.seed);
    keras.push(k);
    log(`  val_loss ${k.val_loss.toFixed(4)}, F2 ${k.val_f2.toFixed(4)} (${k.framework})`);
  }

  const summary = (rs: readonly RecipeResult[]): Record<string, number> => ({
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
    ...exp.map((r) => ({ section: 'parity', name: `exp seed ${r.seed}`, ...r, per_tag: null, train_s: null, epoch_s: null })),
    {
      section: 'parity',
      name: 'exp mean ± sd',
      val_loss: `${se.val_loss!.toFixed(4)} ± ${se.val_loss_sd!.toFixed(4)}`,
      val_f2: `${se.val_f2!.toFixed(4)} ± ${se.val_f2_sd!.toFixed(4)}`,
      train_img_s: se.train_img_s!,
    },
    ...keras.map((r) => ({ section: 'parity', name: `Keras seed ${r.seed}`, ...r, per_tag: null, train_s: null, epoch_s: null })),
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

// A missing piece (no .venv, no build) is a message saying what to run, not a stack trace.
try {
  main();
} catch (e) {
  process.stderr.write(`npm run parity: ${e instanceof Error ? e.message : String(e)}\n`);
  process.exitCode = 1;
}
