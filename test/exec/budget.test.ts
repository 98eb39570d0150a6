/**
 * sweep.budget, each kind on a real 4-point grid (synthetic data, 32 px, one worker): the sweep
 * stops starting points once its budget is spent, ends cleanly (exit 0), says why and which
 * point is best so far, and records it in stopped.json (the MLflow parent's exp.stop_reason).
 * Asserted on outcomes: points started, epochs counted, the reason recorded.
 */
import { before, test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { expIn, tempDir } from '../helpers/cli.js';
import { tinyExperiment, trainingBackends } from '../helpers/training.js';

let tmp: string;
let backend: string;

before(async () => {
  tmp = tempDir('exp-budget-');
  backend = (await trainingBackends())[0]!;
});

interface Outcome {
  code: number;
  stdout: string;
  started: number;
  epochs: number;
  stop: { reason: string; best?: { run: string; value: number } } | undefined;
  /** exp why of a point not started. */
  why: string;
}

/** Runs a 4-point grid (2 epochs each) with the budget given, and reads what it did. */
async function runWith(name: string, budget: string): Promise<Outcome> {
  const file = tinyExperiment(tmp, {
    backend,
    name,
    epochs: 2,
    extra: ['sweep:', '  grid: { training.learning_rate: [0.001, 0.002, 0.003, 0.004] }', `  budget: ${budget}`].join('\n'),
  });
  const runs = join(tmp, `runs-${name}`);
  const r = await expIn(['run', file, '--runs-dir', runs], { cwd: tmp });
  const sweep = join(runs, name, readdirSync(join(runs, name))[0]!);
  const dirs = readdirSync(sweep, { withFileTypes: true })
    .filter((d) => d.isDirectory())
    .map((d) => join(sweep, d.name));
  assert.equal(dirs.length, 4, 'every point of the grid has its folder');
  const started = dirs.filter(
    (d) => existsSync(join(d, 'run.json')) && (JSON.parse(readFileSync(join(d, 'run.json'), 'utf8')) as { attempts: number }).attempts > 0,
  );
  const epochs = dirs.reduce(
    (n, d) => n + (existsSync(join(d, 'metrics.jsonl')) ? readFileSync(join(d, 'metrics.jsonl'), 'utf8').trim().split('\n').filter(Boolean).length : 0),
    0,
  );
  const stopFile = join(sweep, 'stopped.json');
  const stop = existsSync(stopFile) ? (JSON.parse(readFileSync(stopFile, 'utf8')) as Outcome['stop']) : undefined;
  const notStarted = dirs.filter((d) => !started.includes(d));
  const why = notStarted[0] ? (await expIn(['why', notStarted[0]], { cwd: tmp })).stdout : '';
  return { code: r.code, stdout: r.stdout + r.stderr, started: started.length, epochs, stop, why };
}

test('budget.points: 2 of 4 points start, the rest are not started, exit 0 with the reason and the best so far', { timeout: 600_000 }, async () => {
  const o = await runWith('bpoints', '{ points: 2 }');
  assert.equal(o.code, 0, o.stdout);
  assert.equal(o.started, 2);
  assert.match(o.stop?.reason ?? '', /^budget spent: 2 points started \(sweep\.budget\.points 2\)$/);
  assert.ok(o.stop?.best && Number.isFinite(o.stop.best.value), JSON.stringify(o.stop));
  assert.match(o.stdout, /not started: budget spent: 2 points started/);
  assert.match(o.why, /budget: not started: budget spent: 2 points started \(sweep\.budget\.points 2\)/);
  assert.match(o.stdout, /Stopped by its budget: budget spent: 2 points started .*; best so far: \S+ \(final_val_fbeta [\d.]+\)/);
});

test('budget.epochs: 3 epochs with 2 per point: a second point starts (2 < 3), none after it (4 >= 3)', { timeout: 600_000 }, async () => {
  const o = await runWith('bepochs', '{ epochs: 3 }');
  assert.equal(o.code, 0, o.stdout);
  assert.equal(o.started, 2);
  assert.equal(o.epochs, 4);
  assert.match(o.stop?.reason ?? '', /^budget spent: 4 epochs trained in all \(sweep\.budget\.epochs 3\)$/);
});

test('budget.seconds: a wall time spent before the first start stops the sweep starting points (exit 0, nothing trained)', { timeout: 600_000 }, async () => {
  const o = await runWith('bseconds', '{ seconds: 0.000001 }');
  assert.equal(o.code, 0, o.stdout);
  assert.equal(o.started, 0);
  assert.match(o.stop?.reason ?? '', /^budget spent: \S+ s of wall time \(sweep\.budget\.seconds 0\.000001\)$/);
  assert.match(o.stdout, /best so far: none \(no point ended\)/);
});

test('budget.target: a target every finished point reaches stops the sweep after its first point', { timeout: 600_000 }, async () => {
  const o = await runWith('btarget', '{ target: 0 }');
  assert.equal(o.code, 0, o.stdout);
  assert.equal(o.started, 1);
  assert.match(o.stop?.reason ?? '', /^target reached: final_val_fbeta \S+ >= 0 \(sweep\.budget\.target\)$/);
  assert.ok(o.stop?.best, 'the best so far is the point that reached it');
});
