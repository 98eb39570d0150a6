/**
 * Local sweeps as a user runs them, with real training: `exp run --workers 2 --gpus` trains
 * points in parallel and records each point's GPU; killing `exp run` with SIGKILL loses no
 * finished point and its children stop on their own; a Ctrl-C takes effect within a batch,
 * also in the last epoch, and the resumed run's metrics equal an uninterrupted run's; a
 * failing point does not stop the others and --retry-failed re-runs just it; --max-failures
 * stops starting points; median stopping prunes a point that is clearly worse.
 */
import { before, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { BIN, expIn, tempDir } from '../helpers/cli.js';
import { tinyExperiment, trainingBackends } from '../helpers/training.js';
import { spawnTrain } from '../../src/exec/child.js';

let tmp: string;
let backend: string;

before(async () => {
  tmp = tempDir('exp-local-');
  backend = (await trainingBackends())[0]!;
});

const json = <T>(p: string): T => JSON.parse(readFileSync(p, 'utf8')) as T;
const sweepDirOf = (runs: string, name: string): string => {
  const e = join(runs, name);
  return join(e, readdirSync(e)[0]!);
};
const points = (sweep: string): string[] =>
  readdirSync(sweep, { withFileTypes: true })
    .filter((d) => d.isDirectory())
    .map((d) => join(sweep, d.name))
    .sort();
const record = (dir: string): { status: string; attempts: number; gpus?: string; reason?: string } => json(join(dir, 'run.json'));
const metrics = (dir: string): Record<string, number>[] =>
  readFileSync(join(dir, 'metrics.jsonl'), 'utf8')
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l) as Record<string, number>);
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

test(
  'exp run --workers 2 --gpus 0,1 killed with SIGKILL: its children stop, no finished point is trained again, every GPU slot is recorded',
  { timeout: 400_000 },
  async () => {
    const file = tinyExperiment(tmp, {
      backend,
      name: 'par',
      epochs: 3,
      extra: 'sweep: { grid: { training.learning_rate: [0.001, 0.0008, 0.0006, 0.0004] } }',
    });
    const runs = join(tmp, 'runs-par');
    const parent = spawn(process.execPath, [BIN, 'run', file, '--runs-dir', runs, '--workers', '2', '--gpus', '0,1'], { cwd: tmp, stdio: 'ignore' });
    // Kill it once a point has completed and others are under way.
    for (let i = 0; i < 600; i++) {
      await sleep(200);
      const done = existsSync(runs) ? points(sweepDirOf(runs, 'par')).filter((d) => existsSync(join(d, 'run.json')) && record(d).status === 'completed') : [];
      if (done.length >= 1) break;
    }
    parent.kill('SIGKILL');
    await new Promise((r) => parent.once('exit', r));
    const sweep = sweepDirOf(runs, 'par');
    const before = new Map(points(sweep).map((d) => [d, existsSync(join(d, 'run.json')) ? record(d) : undefined]));
    const finished = [...before].filter(([, r]) => r?.status === 'completed').map(([d]) => d);
    assert.ok(finished.length >= 1);
    // The orphans notice their launcher is gone and stop within a batch, recording it.
    for (let i = 0; i < 150 && points(sweep).some((d) => existsSync(join(d, 'run.json')) && record(d).status === 'running'); i++) await sleep(200);
    assert.ok(
      points(sweep).every((d) => !existsSync(join(d, 'run.json')) || record(d).status !== 'running'),
      'no child trains on unwatched',
    );

    const again = await expIn(['run', file, '--runs-dir', runs, '--workers', '2', '--gpus', '0,1'], { cwd: tmp });
    assert.equal(again.code, 0, again.stdout + again.stderr);
    for (const d of points(sweep)) {
      const r = record(d);
      assert.equal(r.status, 'completed', d);
      if (finished.includes(d)) assert.equal(r.attempts, 1, `${d} was finished before the kill and not trained again`);
      assert.ok(r.gpus === '0' || r.gpus === '1', `${d}: its GPU is recorded (${r.gpus})`);
      assert.deepEqual(
        metrics(d).map((m) => m.epoch),
        [1, 2, 3],
      );
    }
    assert.match(again.stdout, /completed +\d/);
  },
);

test(
  'regression: Ctrl-C right after exp run --workers 2 starts its points (before they write run.json): both are killed, none failed, and running again finishes them',
  { timeout: 400_000 },
  async () => {
    const file = tinyExperiment(tmp, { backend, name: 'early', epochs: 1, extra: 'sweep: { grid: { training.learning_rate: [0.001, 0.0005] } }' });
    const runs = join(tmp, 'runs-early');
    let out = '';
    const parent = spawn(process.execPath, [BIN, 'run', file, '--runs-dir', runs, '--workers', '2'], { cwd: tmp, stdio: ['ignore', 'pipe', 'pipe'] });
    parent.stdout!.on('data', (d: Buffer) => (out += d));
    parent.stderr!.on('data', (d: Buffer) => (out += d));
    // Both children are spawned when the display says so; each writes run.json seconds later (after loading TensorFlow.js).
    for (let i = 0; i < 1500 && (out.match(/^started /gm) ?? []).length < 2; i++) await sleep(100);
    assert.equal((out.match(/^started /gm) ?? []).length, 2, out);
    parent.kill('SIGINT');
    const code = await new Promise<number | null>((r) => parent.once('exit', (c) => r(c)));
    assert.equal(code, 130, out);
    const table = out.slice(out.lastIndexOf('run '));
    assert.equal((table.match(/ killed /g) ?? []).length, 2, table);
    assert.doesNotMatch(table, / failed /);
    const again = await expIn(['run', file, '--runs-dir', runs, '--workers', '2'], { cwd: tmp });
    assert.equal(again.code, 0, again.stdout + again.stderr);
    for (const d of points(sweepDirOf(runs, 'early'))) assert.equal(record(d).status, 'completed', d);
  },
);

test('Ctrl-C takes effect within a batch (also in the last epoch); the resumed run equals an uninterrupted one', { timeout: 400_000 }, async () => {
  const file = tinyExperiment(tmp, { backend, name: 'stop', epochs: 3 }); // 4 batches an epoch
  const runs = join(tmp, 'runs-stop');
  for (const s of ['ref', 'cut', 'last']) assert.equal((await expIn(['run', file, '--runs-dir', runs, '--sweep', s, '--dry-run'], { cwd: tmp })).code, 0);
  const dirOf = (s: string): string => points(join(runs, 'stop', s))[0]!;
  assert.equal((await expIn(['train', dirOf('ref')], { cwd: tmp })).code, 0);

  // Interrupt in epoch 2, batch 3, as a Ctrl-C in the terminal would (SIGINT).
  const interruptAt = async (dir: string, epoch: number, batch: number): Promise<number | null> => {
    let sent = false;
    const child = spawnTrain(dir, {
      env: process.env,
      output: 'quiet',
      onMessage: (m) => {
        if (!sent && m.type === 'progress' && m.epoch === epoch && m.batch >= batch) {
          sent = true;
          child.interrupt();
        }
      },
    });
    return (await child.exited).code;
  };
  assert.equal(await interruptAt(dirOf('cut'), 2, 2), 130);
  const cut = record(dirOf('cut'));
  assert.equal(cut.status, 'killed');
  assert.match(cut.reason!, /during epoch 2, after batch [23] of 4/);
  const state = json<{ state: { epoch: number; position: { epoch: number; batch: number } | null } }>(
    join(dirOf('cut'), 'checkpoints', 'last', 'state.json'),
  ).state;
  assert.equal(state.epoch, 1);
  assert.equal(state.position?.epoch, 2);
  assert.ok(state.position!.batch >= 2, 'the checkpoint holds the position inside the epoch');
  assert.equal((await expIn(['train', dirOf('cut')], { cwd: tmp })).code, 0);

  // Regression: a Ctrl-C in the last epoch used to be ignored (the run ended completed, exit 0).
  assert.equal(await interruptAt(dirOf('last'), 3, 2), 130);
  assert.equal(record(dirOf('last')).status, 'killed');
  assert.equal((await expIn(['train', dirOf('last')], { cwd: tmp })).code, 0);

  const ref = metrics(dirOf('ref'));
  for (const s of ['cut', 'last']) {
    const got = metrics(dirOf(s));
    assert.deepEqual(
      got.map((m) => m.epoch),
      [1, 2, 3],
    );
    for (const [i, m] of ref.entries()) {
      for (const k of ['loss', 'fbeta', 'val_loss', 'val_fbeta'])
        assert.ok(Math.abs(got[i]![k]! - m[k]!) <= 1e-5 * Math.max(1, Math.abs(m[k]!)), `${s} epoch ${m.epoch} ${k}: ${got[i]![k]} vs ${m[k]}`);
    }
  }
});

test('a failing point does not stop the others; --retry-failed re-runs just it; --max-failures stops starting points', { timeout: 400_000 }, async () => {
  writeFileSync(join(tmp, 'broken.h5'), 'not HDF5');
  const file = tinyExperiment(tmp, {
    backend,
    name: 'fail',
    epochs: 1,
    extra: `sweep: { grid: { model.weights: [none, ${join(tmp, 'broken.h5')}], training.learning_rate: [0.001, 0.0005] } }`,
  });
  const runs = join(tmp, 'runs-fail');
  const first = await expIn(['run', file, '--runs-dir', runs], { cwd: tmp });
  assert.equal(first.code, 1, 'a failed point makes the sweep exit 1');
  const sweep = sweepDirOf(runs, 'fail');
  const byStatus = (s: string): string[] => points(sweep).filter((d) => record(d).status === s);
  assert.equal(byStatus('completed').length, 2);
  assert.equal(byStatus('failed').length, 2);
  assert.match(record(byStatus('failed')[0]!).reason!, /broken\.h5/);

  const plain = await expIn(['run', file, '--runs-dir', runs], { cwd: tmp });
  assert.equal(plain.code, 0, 'failed points are skipped without --retry-failed');
  assert.match(plain.stdout, /failed before \(--retry-failed runs it again\)/);
  const retry = await expIn(['run', file, '--runs-dir', runs, '--retry-failed'], { cwd: tmp });
  assert.equal(retry.code, 1);
  for (const d of byStatus('completed')) assert.equal(record(d).attempts, 1, 'the completed points are not retrained');
  for (const d of byStatus('failed')) assert.equal(record(d).attempts, 2);

  const limited = await expIn(['run', file, '--runs-dir', runs, '--retry-failed', '--max-failures', '1'], { cwd: tmp });
  assert.match(limited.stdout, /--max-failures 1\): starting no new point/);
  assert.equal(
    byStatus('failed')
      .map((d) => record(d).attempts)
      .sort()
      .join(','),
    '2,3',
    'only the first failed point ran again',
  );
});

test('median stopping prunes a point that is clearly worse than its peers', { timeout: 400_000 }, async () => {
  const file = tinyExperiment(tmp, {
    backend,
    name: 'prune',
    epochs: 3,
    extra:
      'sweep:\n  grid: { training.learning_rate: [0.001, 0.0007, 0.0000001] }\n  early_stop: { rule: median, metric: val_loss, grace_epochs: 1, min_points: 2 }',
  });
  const runs = join(tmp, 'runs-prune');
  const r = await expIn(['run', file, '--runs-dir', runs], { cwd: tmp });
  assert.equal(r.code, 0, r.stdout + r.stderr);
  const sweep = sweepDirOf(runs, 'prune');
  const statuses = points(sweep).map((d) => [d.split('/').at(-1)!, record(d).status, metrics(d).length] as const);
  const bad = statuses.find(([n]) => n.startsWith('learning_rate=1e-7'))!;
  assert.equal(bad[1], 'pruned', JSON.stringify(statuses));
  assert.ok(bad[2] < 3, 'it stopped before its last epoch');
  assert.match(
    record(points(sweep).find((d) => d.includes('1e-7'))!).reason!,
    /pruned by median stopping: best val_loss .* is worse than the median .* of 2 other points/,
  );
  for (const [n, s] of statuses) if (n !== bad[0]) assert.equal(s, 'completed');
  const runsList = await expIn(['runs', runs], { cwd: tmp });
  assert.match(runsList.stdout, /learning_rate=1e-7-\w+ +\w+ +pruned/);
});
