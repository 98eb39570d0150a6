/**
 * `exp runs` and `exp compare` over run folders written by hand (no training): a sweep with
 * finished, running, interrupted and failed points, and a planned run in another experiment.
 * Checks the rows, the best epoch (from summary.json, or metrics.jsonl mid-run) and the ranking.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { stringify } from 'yaml';
import { exp, tempDir } from '../helpers/cli.js';
import { bestEpoch, listRuns, sortRows, sweepTable, type RunRow } from '../../src/query/runs.js';
import { normalise, runConfigOf } from '../../src/config/normalise.js';
import type { ExperimentFile } from '../../src/config/types.gen.js';
import { tryLock } from '../../src/store/lock.js';

let tmp: string;
let runs: string;

const config = (name: string, lr: number, monitor = 'val_fbeta'): string =>
  stringify(
    runConfigOf(
      normalise(
        {
          name,
          data: { path: '/nowhere' },
          training: { learning_rate: lr, epochs: 3 },
          checkpoint: { monitor, mode: 'auto' },
          backend: 'wasm',
        } as ExperimentFile,
        '/x.yaml',
      ),
    ),
  );
const locks: { release(): void }[] = [];

interface Point {
  dir: string;
  lr: number;
  status?: string;
  epochs?: { val_loss: number; val_fbeta: number }[];
  summary?: boolean;
  lock?: boolean;
}

function writeRun(sweepDir: string, p: Point, experiment = 'exp-a'): void {
  const dir = join(sweepDir, p.dir);
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, 'config.yaml'), config(experiment, p.lr));
  if (!p.status) return;
  writeFileSync(
    join(dir, 'run.json'),
    JSON.stringify({
      key: `key-${p.dir}`,
      status: p.status,
      started: '2026-01-01T00:00:00.000Z',
      ...(p.status === 'running' ? {} : { ended: '2026-01-01T00:01:30.000Z' }),
      backend: { name: 'wasm', device: 'wasm simd' },
    }),
  );
  const lines = (p.epochs ?? []).map((m, i) => ({ epoch: i + 1, loss: m.val_loss + 0.1, fbeta: m.val_fbeta - 0.1, ...m, lr: p.lr, seconds: 10 }));
  writeFileSync(join(dir, 'metrics.jsonl'), lines.map((l) => JSON.stringify(l) + '\n').join(''));
  if (p.summary) {
    const best = bestEpoch(lines, 'val_fbeta', 'max')!;
    writeFileSync(
      join(dir, 'summary.json'),
      JSON.stringify({
        status: p.status,
        backend: 'wasm',
        epochs_completed: lines.length,
        monitor: 'val_fbeta',
        mode: 'max',
        best,
        final: { val_loss: best.metrics.val_loss, val_fbeta: best.metrics.val_fbeta },
        baseline: { constant_top_k: 2, val_fbeta: 0.42 },
        duration_s: 90,
      }),
    );
  }
}

before(async () => {
  tmp = tempDir('exp-query-');
  runs = join(tmp, 'runs');
  const sweep = join(runs, 'exp-a', 'sweep-1');
  const points: Point[] = [
    {
      dir: 'lr=0.1-aaaa',
      lr: 0.1,
      status: 'completed',
      summary: true,
      epochs: [
        { val_loss: 0.5, val_fbeta: 0.5 },
        { val_loss: 0.3, val_fbeta: 0.6 },
        { val_loss: 0.35, val_fbeta: 0.55 },
      ],
    },
    {
      dir: 'lr=0.01-bbbb',
      lr: 0.01,
      status: 'completed',
      summary: true,
      epochs: [
        { val_loss: 0.4, val_fbeta: 0.7 },
        { val_loss: 0.2, val_fbeta: 0.7 },
      ],
    },
    { dir: 'lr=0.001-cccc', lr: 0.001, status: 'running', lock: true, epochs: [{ val_loss: 0.25, val_fbeta: 0.65 }] },
    { dir: 'lr=0.0001-dddd', lr: 0.0001, status: 'failed', epochs: [] },
    { dir: 'lr=0.5-eeee', lr: 0.5, status: 'running', epochs: [{ val_loss: 0.9, val_fbeta: 0.1 }] }, // its process is gone: no lock
  ];
  for (const p of points) writeRun(sweep, p);
  writeFileSync(
    join(sweep, 'index.json'),
    JSON.stringify({
      experiment: 'exp-a',
      sweep: 'sweep-1',
      uid: 'u-sweep-1',
      file: 'a.yaml',
      created: '2026-01-01T00:00:00.000Z',
      points: points.map((p, index) => ({ index, key: `key-${p.dir}`, name: p.dir.slice(0, -5), params: { 'training.learning_rate': p.lr }, dir: p.dir })),
    }),
  );
  writeRun(join(runs, 'exp-0', 'sweep-z'), { dir: 'only', lr: 1 }, 'exp-0'); // planned, no index.json
  for (const p of points.filter((x) => x.lock)) locks.push((await tryLock(join(sweep, p.dir, '.lock')))!); // held by this (live) process
});

after(() => {
  for (const l of locks) l.release();
  if (tmp) rmSync(tmp, { recursive: true, force: true });
});

test('listRuns: every folder, by experiment, sweep and sweep order, with status, epochs and the best epoch', () => {
  const rows = listRuns(runs);
  assert.deepEqual(
    rows.map((r) => `${r.experiment}/${r.sweep}/${r.name}`),
    [
      'exp-0/sweep-z/only',
      'exp-a/sweep-1/lr=0.1-aaaa',
      'exp-a/sweep-1/lr=0.01-bbbb',
      'exp-a/sweep-1/lr=0.001-cccc',
      'exp-a/sweep-1/lr=0.0001-dddd',
      'exp-a/sweep-1/lr=0.5-eeee',
    ],
  );
  const by = (name: string): RunRow => rows.find((r) => r.name === name)!;
  assert.equal(by('only').status, 'planned');
  assert.match(by('only').key!, /^[0-9a-f]{12}$/);
  assert.equal(by('only').best, null);
  assert.deepEqual(
    [by('lr=0.1-aaaa').status, by('lr=0.1-aaaa').epochs_done, by('lr=0.1-aaaa').epochs_planned, by('lr=0.1-aaaa').best?.epoch],
    ['completed', 3, 3, 2],
  );
  assert.equal(by('lr=0.1-aaaa').best?.metrics.val_loss, 0.3);
  assert.equal(by('lr=0.1-aaaa').duration_s, 90);
  assert.equal(by('lr=0.1-aaaa').backend, 'wasm');
  // First of equal values wins, as checkpointing keeps the first best.
  assert.equal(by('lr=0.01-bbbb').best?.epoch, 1);
  // Mid-run: no summary.json yet, so the best epoch comes from metrics.jsonl.
  assert.deepEqual([by('lr=0.001-cccc').status, by('lr=0.001-cccc').best?.epoch, by('lr=0.001-cccc').best?.metrics.val_fbeta], ['running', 1, 0.65]);
  assert.equal(by('lr=0.5-eeee').status, 'interrupted');
  assert.deepEqual([by('lr=0.0001-dddd').status, by('lr=0.0001-dddd').best], ['failed', null]);
  assert.deepEqual(by('lr=0.1-aaaa').params, { 'training.learning_rate': 0.1 });
});

test("sweepTable ranks by the sweep's metric (default final_val_fbeta, highest first), points without it last", () => {
  const t = sweepTable(join(runs, 'exp-a', 'sweep-1'));
  assert.deepEqual([t.metric, t.mode, t.paths], ['final_val_fbeta', 'max', ['training.learning_rate']]);
  // Only finished points have a final evaluation; the others keep their sweep order, last.
  assert.deepEqual(
    t.rows.map((r) => r.params['training.learning_rate']),
    [0.01, 0.1, 0.001, 0.0001, 0.5],
  );
  assert.deepEqual(
    t.points.map((r) => r.params['training.learning_rate']),
    [0.1, 0.01, 0.001, 0.0001, 0.5],
  );
  const byEpoch = sweepTable(join(runs, 'exp-a', 'sweep-1'), 'val_fbeta');
  assert.deepEqual(
    byEpoch.rows.map((r) => r.params['training.learning_rate']),
    [0.01, 0.001, 0.1, 0.5, 0.0001],
  );
  const byLoss = sweepTable(join(runs, 'exp-a', 'sweep-1'), 'val_loss');
  assert.equal(byLoss.mode, 'min');
  // The best epoch is chosen by val_fbeta; it is that epoch's val_loss that ranks here.
  assert.deepEqual(
    byLoss.rows.map((r) => r.params['training.learning_rate']),
    [0.001, 0.1, 0.01, 0.5, 0.0001],
  );
  assert.deepEqual(
    sortRows(byLoss.rows, 'val_loss', 'max').map((r) => r.best?.metrics.val_loss ?? null),
    [0.9, 0.4, 0.3, 0.25, null],
  );
});

test('exp runs prints the table and --json; exp compare ranks the sweep; a wrong --sort is a usage error', () => {
  const table = exp(['runs', runs]);
  assert.equal(table.code, 0, table.stderr);
  const lines = table.stdout.trim().split('\n');
  assert.match(lines[0]!, /^experiment +sweep +run +key +status +epochs +best epoch +monitored +val_loss +val_fbeta +backend +duration$/);
  assert.equal(lines.length, 2 + 6);
  assert.match(table.stdout, /^exp-a +sweep-1 +lr=0\.1-aaaa +key-lr=0\.1-aaaa +completed +3\/3 +2 +val_fbeta=0\.6 +0\.3 +0\.6 +wasm +1m30s$/m);
  assert.match(table.stdout, /^exp-a +sweep-1 +lr=0\.5-eeee .* interrupted +1\/3 /m);
  const json = JSON.parse(exp(['runs', '--json'], { env: { EXP_RUNS_DIR: runs } }).stdout) as RunRow[];
  assert.equal(json.length, 6);
  assert.equal(json[1]!.best?.metrics.val_fbeta, 0.6);

  const cmp = exp(['compare', 'exp-a/sweep-1', '--runs-dir', runs]);
  assert.equal(cmp.code, 0, cmp.stderr);
  assert.match(cmp.stdout, /^exp-a \/ sweep-1: 5 points, ranked by final_val_fbeta \(max\), best first$/m);
  const rows = cmp.stdout.split('\n').filter((l) => /^\d/.test(l));
  assert.deepEqual(
    rows.map((l) => l.split(/ +/)[0]),
    ['0.01', '0.1', '0.001', '0.0001', '0.5'],
  );
  assert.match(rows[0]!, /^0\.01 +key-lr=0\.01-bbbb +completed +1 +0\.4 +0\.7 +0\.7 +0\.42$/);
  assert.match(cmp.stdout, /^training\.learning_rate +key +status +best epoch +val_loss +val_fbeta +final_val_fbeta +baseline$/m);

  const sorted = JSON.parse(exp(['compare', join(runs, 'exp-a', 'sweep-1'), '--sort', 'val_loss', '--json']).stdout) as {
    params: Record<string, number>;
    best_epoch: number | null;
  }[];
  assert.deepEqual(
    sorted.map((r) => r.params['training.learning_rate']),
    [0.001, 0.1, 0.01, 0.5, 0.0001],
  );
  assert.deepEqual(
    sorted.map((r) => r.best_epoch),
    [1, 2, 1, 1, null],
  );
  const bad = exp(['compare', 'sweep-1', '--runs-dir', runs, '--sort', 'nope']);
  assert.equal(bad.code, 2);
  assert.match(bad.stderr, /no run has a metric 'nope'; known: .*val_fbeta/);
  assert.equal(exp(['compare', 'missing', '--runs-dir', runs]).code, 2);
});
