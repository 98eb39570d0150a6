// Real training through the CLI on every backend this machine has (the native binding when
// scripts/build-native-backend.sh has built it, and wasm always), then resume after a kill.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { spawn } from 'node:child_process';
import sharp from 'sharp';
import { exp, tempDir, BIN } from '../helpers/cli.js';
import { tinyExperiment, trainingBackends } from '../helpers/training.js';

const backends = await trainingBackends();
const runDirOf = (runs: string, experiment: string): string => {
  const exp1 = join(runs, experiment);
  const sweep = join(exp1, readdirSync(exp1)[0]!);
  return join(
    sweep,
    readdirSync(sweep).find((n) => !n.endsWith('.json') && !n.endsWith('.yaml'))!,
  );
};
const metricsOf = (dir: string): Record<string, number>[] =>
  readFileSync(join(dir, 'metrics.jsonl'), 'utf8')
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l) as Record<string, number>);

for (const backend of backends) {
  test(`exp run trains end to end on ${backend}: metrics, checkpoints, curves, summary; no tensor leak`, async () => {
    const dir = tempDir();
    const runs = join(dir, 'runs');
    const r = exp(['run', tinyExperiment(dir, { backend }), '--runs-dir', runs], { env: { EXP_CACHE_DIR: join(dir, 'cache') } });
    assert.equal(r.code, 0, r.stdout + r.stderr);
    const run = runDirOf(runs, 'tiny');
    const lines = metricsOf(run);
    assert.deepEqual(
      lines.map((l) => l.epoch),
      [1, 2],
    );
    for (const k of ['loss', 'fbeta', 'val_loss', 'val_fbeta', 'val_micro_fbeta', 'val_macro_fbeta', 'val_fbeta.primary', 'val_precision.water'])
      assert.ok(Number.isFinite(lines[1]![k]), k);
    const summary = JSON.parse(readFileSync(join(run, 'summary.json'), 'utf8')) as {
      status: string;
      backend: string;
      epochs_completed: number;
      best: { epoch: number };
      final: Record<string, number>;
      tensors: { after_each_epoch: number[] };
      images_per_second: { train: number };
    };
    assert.equal(summary.status, 'completed');
    assert.equal(summary.backend, backend);
    assert.equal(summary.epochs_completed, 2);
    assert.ok(summary.final && Number.isFinite(summary.final.val_fbeta), 'the best checkpoint was reloaded and evaluated');
    assert.ok(summary.images_per_second.train > 0);
    const counts = summary.tensors.after_each_epoch;
    assert.equal(new Set(counts).size, 1, `tensor count changed between epochs: ${counts}`);
    for (const f of [
      'checkpoints/last/state.json',
      'checkpoints/last/weights.json',
      'checkpoints/last/optimizer.json',
      'checkpoints/best/weights.json',
      'split/train.txt',
      'split/val.txt',
      'split/split.json',
      'tags.txt',
      'events.jsonl',
      'run.json',
    ])
      assert.ok(existsSync(join(run, f)), f);
    const png = await sharp(join(run, 'curves.png')).metadata();
    assert.equal(png.format, 'png');
    assert.ok(png.width! > 400 && png.height! > 300);
    const run1 = JSON.parse(readFileSync(join(run, 'run.json'), 'utf8')) as {
      status: string;
      backend: { name: string; threads: number };
      environment: { node: string };
    };
    assert.equal(run1.status, 'completed');
    assert.equal(run1.backend.name, backend);
    assert.equal(run1.environment.node, process.version);
    // Running the sweep again skips the finished point.
    const again = exp(['run', join(dir, 'tiny.yaml'), '--runs-dir', runs], { env: { EXP_CACHE_DIR: join(dir, 'cache') } });
    assert.equal(again.code, 0);
    assert.match(again.stdout, /skipped/);
  });
}

test('killing a run mid-way and running it again resumes from the last epoch, with the same numbers (wasm)', async () => {
  const dir = tempDir();
  const env = { ...process.env, EXP_CACHE_DIR: join(dir, 'cache') };
  const file = tinyExperiment(dir, { backend: 'wasm', epochs: 3 });
  // Reference: the uninterrupted run, in its own run store.
  const ref = exp(['run', file, '--runs-dir', join(dir, 'ref')], { env });
  assert.equal(ref.code, 0, ref.stderr);
  const refMetrics = metricsOf(runDirOf(join(dir, 'ref'), 'tiny'));

  const runs = join(dir, 'runs');
  assert.equal(exp(['run', file, '--runs-dir', runs, '--dry-run']).code, 0);
  const run = runDirOf(runs, 'tiny');
  // Train the folder and kill -9 it once epoch 1 is on disk: the child tells its launcher (this
  // test, over IPC) after an epoch's checkpoints and metrics are written, so the kill follows
  // that event, not a polling interval; two more epochs are still to train.
  await new Promise<void>((resolve, reject) => {
    const child = spawn(process.execPath, [BIN, 'train', run], { env, stdio: ['ignore', 'ignore', 'ignore', 'ipc'] });
    child.on('message', (m: { type?: string }) => {
      if (m.type === 'epoch') child.kill('SIGKILL');
    });
    child.on('exit', () => resolve());
    child.on('error', reject);
  });
  const partial = metricsOf(run);
  assert.ok(partial.length >= 1 && partial.length < 3, `killed after ${partial.length} epochs`);
  const status = JSON.parse(readFileSync(join(run, 'run.json'), 'utf8')) as { status: string };
  assert.equal(status.status, 'running', 'a kill -9 leaves the folder claiming running, and the stale lock is taken over');

  const resumed = exp(['run', file, '--runs-dir', runs], { env });
  assert.equal(resumed.code, 0, resumed.stdout + resumed.stderr);
  assert.match(readFileSync(join(run, 'train.log'), 'utf8'), /resuming from checkpoints\/last after epoch \d/);
  const after = metricsOf(run);
  assert.deepEqual(
    after.map((m) => m.epoch),
    [1, 2, 3],
  );
  for (let i = 0; i < 3; i++) {
    for (const k of ['loss', 'val_loss', 'val_fbeta']) {
      assert.ok(Math.abs(after[i]![k]! - refMetrics[i]![k]!) < 1e-5, `epoch ${i + 1} ${k}: resumed ${after[i]![k]} vs uninterrupted ${refMetrics[i]![k]}`);
    }
  }
  const epochs = readFileSync(join(run, 'events.jsonl'), 'utf8')
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l) as { type: string; epoch?: number })
    .filter((e) => e.type === 'epoch')
    .map((e) => e.epoch);
  assert.deepEqual(epochs, [1, 2, 3], 'each epoch is in the tracking log exactly once');
});

test('--force trains a completed point again from scratch, not from its last checkpoint', () => {
  const dir = tempDir();
  const runs = join(dir, 'runs');
  const env = { EXP_CACHE_DIR: join(dir, 'cache') };
  const file = tinyExperiment(dir, { backend: backends[0]!, epochs: 1 });
  assert.equal(exp(['run', file, '--runs-dir', runs], { env }).code, 0);
  const run = runDirOf(runs, 'tiny');
  const first = readFileSync(join(run, 'summary.json'), 'utf8');
  const again = exp(['run', file, '--runs-dir', runs, '--force'], { env });
  assert.equal(again.code, 0, again.stderr);
  assert.doesNotMatch(again.stdout, /resuming/);
  assert.deepEqual(
    metricsOf(run).map((m) => m.epoch),
    [1],
  );
  const run2 = JSON.parse(readFileSync(join(run, 'run.json'), 'utf8')) as { attempts: number; status: string };
  assert.equal(run2.status, 'completed');
  assert.equal(run2.attempts, 2);
  assert.notEqual(readFileSync(join(run, 'summary.json'), 'utf8'), first, 'a new summary was written');
});
