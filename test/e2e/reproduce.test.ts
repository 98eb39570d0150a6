/**
 * End to end, as a user runs it: `exp run` trains a tiny run (synthetic data, wasm), then
 * `exp reproduce <folder>` trains it again in a new folder and must print the same metrics,
 * exactly (wasm is deterministic). `exp reproduce <key>` and `exp reproduce <MLflow run id>`
 * then resolve the original and prepare a folder with --dry-run, so the file trains twice:
 * each training takes 20-60 s of CPU.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { exp, tempDir } from '../helpers/cli.js';
import { startMlflow } from '../helpers/mlflow-server.js';
import { MlflowClient, toRecord } from '../../src/mlflow/client.js';
import { compareResults, sameBackend } from '../../src/reproduce/compare.js';

let tmp: string;
let runs: string;
let env: NodeJS.ProcessEnv;
let original: string; // the trained run folder
let sweep: string;

interface Summary {
  best: { epoch: number; metrics: Record<string, number> };
  final: Record<string, number>;
  split: { hash: string };
}
const summaryOf = (dir: string): Summary => JSON.parse(readFileSync(join(dir, 'summary.json'), 'utf8')) as Summary;
const read = (path: string): string => readFileSync(path, 'utf8');

before(() => {
  tmp = tempDir('exp-e2e-reproduce-');
  runs = join(tmp, 'runs');
  // No ambient tracking server: the runs stay local.
  env = { EXP_CACHE_DIR: join(tmp, 'cache'), MLFLOW_TRACKING_URI: '', MLFLOW_EXPERIMENT_NAME: '', EXP_RUNS_DIR: '' };
  writeFileSync(
    join(tmp, 'tiny.yaml'),
    [
      'name: tiny',
      `data: { path: ${join(tmp, 'data')}, image_size: 32, synth: { count: 60, seed: 0, size: 64 } }`,
      'model: { weights: none, frozen_blocks: 4 }',
      'training: { batch_size: 16, epochs: 2 }',
      'backend: wasm',
    ].join('\n') + '\n',
  );
});

after(() => {
  if (tmp) rmSync(tmp, { recursive: true, force: true });
});

test('exp reproduce <folder> trains a copy beside the original and prints the same metrics, exactly, on wasm', { timeout: 900_000 }, () => {
  let t0 = Date.now();
  const run = exp(['run', 'tiny.yaml', '--runs-dir', 'runs'], { cwd: tmp, env });
  console.log(`# exp run (training 1) took ${((Date.now() - t0) / 1000).toFixed(1)} s`);
  assert.equal(run.code, 0, run.stdout + run.stderr);
  sweep = readdirSync(join(runs, 'tiny'))[0]!;
  const name = readdirSync(join(runs, 'tiny', sweep)).find((n) => n.startsWith('tiny-'))!;
  original = join(runs, 'tiny', sweep, name);

  t0 = Date.now();
  const r = exp(['reproduce', join('runs', 'tiny', sweep, name)], { cwd: tmp, env });
  console.log(`# exp reproduce <folder> (training 2) took ${((Date.now() - t0) / 1000).toFixed(1)} s`);
  assert.equal(r.code, 0, r.stdout + r.stderr);
  const out = r.stdout;
  const key = JSON.parse(read(join(original, 'run.json'))).key as string;
  assert.match(out, new RegExp(`^Reproducing runs/tiny/${sweep}/${name} \\(key ${key}, status completed, backend wasm\\)$`, 'm'));
  const copy = join(runs, 'tiny', `${sweep}-repro-1`, name);
  assert.match(out, new RegExp(`^New run folder: runs/tiny/${sweep}-repro-1/${name} \\(config.yaml and split/ from the original\\)$`, 'm'));

  // The copy: the same config byte for byte, the same split, its own sweep index, and results.
  assert.equal(read(join(copy, 'config.yaml')), read(join(original, 'config.yaml')));
  for (const f of ['train.txt', 'val.txt', 'split.json']) assert.equal(read(join(copy, 'split', f)), read(join(original, 'split', f)), f);
  const index = JSON.parse(read(join(runs, 'tiny', `${sweep}-repro-1`, 'index.json'))) as { sweep: string; points: { key: string; dir: string }[] };
  assert.deepEqual([index.sweep, index.points.map((p) => [p.key, p.dir])], [`${sweep}-repro-1`, [[key, name]]]);
  assert.equal(JSON.parse(read(join(copy, 'run.json'))).status, 'completed');
  assert.equal(JSON.parse(read(join(copy, 'reproduction.json'))).of.dir, original);

  // What was compared, and found the same.
  assert.match(out, /^ {2}environment +same +node v\d+/m);
  assert.match(out, /^ {2}data +same +data fingerprint [0-9a-f]{20}$/m);
  assert.match(out, new RegExp(`^ {2}data +same +split ${summaryOf(original).split.hash}$`, 'm'));
  assert.match(out, /^ {2}backend +same +wasm/m);

  // The side-by-side table: every metric equal, difference 0, within the tolerance.
  assert.match(out, /^metric +original +reproduction +difference +relative +match$/m);
  const a = summaryOf(original);
  const b = summaryOf(copy);
  const expected: [string, number][] = [
    ['best epoch', a.best.epoch],
    ['best val_loss', a.best.metrics.val_loss!],
    ['best val_fbeta', a.best.metrics.val_fbeta!],
    ['best loss', a.best.metrics.loss!],
    ['best fbeta', a.best.metrics.fbeta!],
    ['final val_loss', a.final.val_loss!],
    ['final val_fbeta', a.final.val_fbeta!],
  ];
  for (const [metric, v] of expected) {
    const shown = String(Number.isInteger(v) ? v : Number(v.toPrecision(8)));
    assert.match(out, new RegExp(`^${metric} +${shown.replace('.', '\\.')} +${shown.replace('.', '\\.')} +0 +0 +yes$`, 'm'), metric);
  }
  assert.match(out, /^Reproduced: all 7 metrics match the original within 1e-6 \(relative\) on the same backend \(wasm\)\.$/m);
  // Exactly equal, not merely close: the same backend, data, split and seeds give the same numbers.
  assert.deepEqual(b.best, a.best);
  assert.equal(b.final.val_loss, a.final.val_loss);
  assert.equal(b.final.val_fbeta, a.final.val_fbeta);

  // Both appear in `exp runs`, with the same best metrics.
  const list = exp(['runs', 'runs'], { cwd: tmp, env });
  assert.equal(list.code, 0, list.stderr);
  const rows = list.stdout.split('\n').filter((l) => l.startsWith('tiny '));
  assert.equal(rows.length, 2);
  assert.equal(rows[0]!.split(/ +/).slice(2, 10).join(' '), rows[1]!.split(/ +/).slice(2, 10).join(' '));
});

test('exp reproduce <key prefix> finds the original, not its reproduction', { timeout: 120_000 }, () => {
  assert.ok(original, 'needs the first test');
  const key = JSON.parse(read(join(original, 'run.json'))).key as string;
  const r = exp(['reproduce', key.slice(0, 6), '--dry-run'], { cwd: tmp, env: { ...env, EXP_RUNS_DIR: runs } });
  assert.equal(r.code, 0, r.stdout + r.stderr);
  assert.match(r.stdout, new RegExp(`^Reproducing ${original.replace(tmp + '/', '')} \\(key ${key}, status completed, backend wasm\\)$`, 'm'));
  assert.match(r.stdout, new RegExp(`^New run folder: runs/tiny/${sweep}-repro-2/`, 'm'));
  assert.match(r.stdout, /^Nothing trained \(--dry-run\)/m);
  const repro = JSON.parse(
    read(
      join(
        runs,
        'tiny',
        `${sweep}-repro-2`,
        readdirSync(join(runs, 'tiny', `${sweep}-repro-2`)).find((n) => n.startsWith('tiny-'))!,
        'reproduction.json',
      ),
    ),
  );
  assert.deepEqual(repro.original_results.best, summaryOf(original).best.metrics);

  const none = exp(['reproduce', 'ffffff', '--runs-dir', runs], { cwd: tmp, env });
  assert.equal(none.code, 2);
  assert.match(none.stderr, /no run folder under .* has a run key starting with 'ffffff'.*\[RUN_NOT_FOUND\]/s);
  const noServer = exp(['reproduce', '0123456789abcdef0123456789abcdef'], { cwd: tmp, env });
  assert.equal(noServer.code, 2);
  assert.match(noServer.stderr, /looks like an MLflow run id, but MLFLOW_TRACKING_URI is not set/);
  assert.equal(exp(['reproduce', 'not-a-run'], { cwd: tmp, env }).code, 2);
});

test('exp reproduce <MLflow run id> takes config.yaml and results from the server', { timeout: 300_000 }, async () => {
  assert.ok(original, 'needs the first test');
  const server = await startMlflow();
  try {
    const withServer = { ...env, MLFLOW_TRACKING_URI: server.uri };
    const sync = exp(['sync', original], { cwd: tmp, env: withServer });
    assert.equal(sync.code, 0, sync.stdout + sync.stderr);
    const api = new MlflowClient({ uri: server.uri, backoffMs: 50 });
    const experimentId = (await api.getExperimentByName('tiny'))!.experiment_id;
    const child = (await api.searchAllRuns({ experimentIds: [experimentId] })).find((x) => toRecord(x.data.tags)['mlflow.parentRunId'] !== undefined)!;

    const r = exp(['reproduce', child.info.run_id, '--dry-run', '--runs-dir', 'runs'], { cwd: tmp, env: withServer });
    assert.equal(r.code, 0, r.stdout + r.stderr);
    assert.match(
      r.stdout,
      new RegExp(`^Reproducing MLflow run ${child.info.run_id} at ${server.uri} \\(key [0-9a-f]{12}, status completed, backend wasm\\)$`, 'm'),
    );
    const dir = join(runs, 'tiny', `${sweep}-repro-3`, child.info.run_name);
    assert.ok(existsSync(join(dir, 'config.yaml')), r.stdout);
    assert.equal(read(join(dir, 'config.yaml')), read(join(original, 'config.yaml')));
    assert.ok(!existsSync(join(dir, 'split')), 'the split is drawn again: MLflow does not hold it');
    assert.match(r.stdout, /^ {2}data +\? +the original's split is not available/m);
    const repro = JSON.parse(read(join(dir, 'reproduction.json')));
    assert.deepEqual(repro.original_results.best, summaryOf(original).best.metrics);
    assert.equal(repro.of.split_hash, summaryOf(original).split.hash);
  } finally {
    await server.dispose();
  }
});

test("compareResults lines up both runs' metrics with absolute and relative differences; sameBackend needs the same device", () => {
  const a = { best_epoch: 3, best: { val_loss: 0.2, val_fbeta: 0.8 }, final: { val_loss: 0.2, val_fbeta: 0.8 } };
  const b = { best_epoch: 3, best: { val_loss: 0.2000001, val_fbeta: 0.8 }, final: null };
  const rows = compareResults(a, b);
  assert.deepEqual(
    rows.map((r) => r.metric),
    ['best epoch', 'best val_loss', 'best val_fbeta', 'final val_loss', 'final val_fbeta'],
  );
  assert.equal(rows[0]!.relative, 0);
  assert.ok(Math.abs(rows[1]!.relative! - 0.0000001 / 0.2000001) < 1e-15);
  assert.deepEqual([rows[3]!.reproduction, rows[3]!.difference, rows[3]!.relative], [null, null, null]);
  assert.deepEqual(
    compareResults(null, b).map((r) => r.original),
    [null, null, null],
  );
  assert.ok(sameBackend({ name: 'wasm', device: 'wasm simd' }, { name: 'wasm', device: 'wasm simd' }));
  assert.ok(!sameBackend({ name: 'wasm', device: 'wasm simd' }, { name: 'wasm', device: 'wasm' }));
  assert.ok(!sameBackend({ name: 'wasm' }, { name: 'tensorflow' }));
  assert.ok(!sameBackend(null, { name: 'wasm' }));
});
