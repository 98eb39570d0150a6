/**
 * `exp sweep simulate` over run folders written here in the store's format (metrics.jsonl
 * curves and epoch seconds; no training): the hand-checked ASHA case, determinism, the other
 * schedulers, coded errors, and --json through a real pipe.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import seedrandom from 'seedrandom';
import { BIN, expIn, tempDir } from '../helpers/cli.js';
import { writeMetrics } from '../../src/store/run.js';
import type { SweepIndex } from '../../src/store/types.js';

/** A sweep folder with one run folder per curve, in sweep order (index.json), each epoch taking `seconds`. */
function sweepOf(curves: number[][], seconds = 10, metric = 'val_fbeta'): string {
  const sweep = join(tempDir('exp-sim-'), 'runs', 'exp', 'sweep-test');
  const points = curves.map((_, i) => ({ index: i, key: `k${i}`.padEnd(8, '0'), name: `p${i}`, params: { i }, dir: `p${i}-k${i}`.padEnd(8, '0') }));
  for (const [i, curve] of curves.entries()) {
    const dir = join(sweep, points[i]!.dir);
    mkdirSync(dir, { recursive: true });
    writeFileSync(join(dir, 'config.yaml'), `name: p${i}\n`);
    writeMetrics(
      dir,
      curve.map((v, e) => ({ epoch: e + 1, [metric]: v, val_loss: 1 - v, seconds })),
    );
  }
  const index: SweepIndex = { experiment: 'exp', sweep: 'sweep-test', uid: 'u', file: 'exp.yaml', created: new Date(0).toISOString(), points };
  writeFileSync(join(sweep, 'index.json'), JSON.stringify(index));
  return sweep;
}

/** Four points, 9 epochs: with eta 3 the rungs end at epochs 1, 3 and 9. p2 starts slowly and would have been the best. */
const HAND = [
  [0.5, 0.6, 0.7, 0.72, 0.74, 0.76, 0.78, 0.79, 0.8],
  [0.4, 0.45, 0.5, 0.55, 0.6, 0.62, 0.64, 0.66, 0.68],
  [0.55, 0.6, 0.65, 0.7, 0.75, 0.8, 0.85, 0.88, 0.9],
  [0.3, 0.35, 0.4, 0.45, 0.5, 0.52, 0.54, 0.56, 0.58],
];

interface Sim {
  epochs: number;
  grid_epochs: number;
  wall_s: number;
  grid_wall_s: number;
  best: { run: string; value: number };
  true_best: { run: string; value: number };
  pruned: { run: string; epoch: number; reason: string }[];
}

async function simulateJson(args: string[]): Promise<Sim> {
  const r = await expIn(['sweep', 'simulate', ...args, '--json']);
  assert.equal(r.code, 0, r.stderr);
  return JSON.parse(r.stdout) as Sim;
}

test('ASHA on a hand-checked sweep: p1 and p3 pruned at rung 1, p2 at rung 2, 14 of 36 epochs, the same on every run', async () => {
  const sweep = sweepOf(HAND);
  const one = await simulateJson([sweep, '--scheduler', 'asha', '--eta', '3']);
  // Rung 1 (epoch 1): p0 0.5 alone goes on; p1 0.4 < 0.5 (2 points, keep 1); p2 0.55 is the best of 3; p3 0.3 < 0.55.
  // Rung 2 (epoch 3): p0 0.7 alone goes on; p2 0.65 < 0.7. p0 trains to epoch 9: 9 + 1 + 3 + 1 = 14 epochs.
  assert.deepEqual(
    one.pruned.map((p) => [p.run, p.epoch]),
    [
      ['p1-k1000', 1],
      ['p2-k2000', 3],
      ['p3-k3000', 1],
    ],
  );
  assert.equal(one.pruned[1]!.reason, 'pruned at rung 2 (epoch 3): val_fbeta 0.65 < cut-off 0.7 = top 1/3 of 2 points (rank 2, 1 go on)');
  assert.deepEqual([one.epochs, one.grid_epochs, one.wall_s, one.grid_wall_s], [14, 36, 140, 360]);
  assert.deepEqual(one.best, { run: 'p0-k0000', value: 0.8 });
  assert.deepEqual(one.true_best, { run: 'p2-k2000', value: 0.9 });
  // Two workers: p0 and p1 start together; p1's worker takes p2 at 10 s and p3 at 40 s; p0 alone ends at 90 s.
  const two = await simulateJson([sweep, '--scheduler', 'asha', '--eta', '3', '--workers', '2']);
  assert.deepEqual([two.epochs, two.wall_s, two.grid_wall_s], [14, 90, 180]);
  assert.deepEqual(await simulateJson([sweep, '--scheduler', 'asha', '--eta', '3', '--workers', '2']), two);
});

test('the other schedulers: none trains everything, median and hyperband prune, a loss is minimised', async () => {
  const sweep = sweepOf(HAND);
  const none = await simulateJson([sweep, '--scheduler', 'none']);
  assert.deepEqual([none.epochs, none.pruned.length, none.best], [36, 0, none.true_best]);
  const median = await simulateJson([sweep, '--scheduler', 'median']);
  assert.ok(median.epochs < 36 && median.pruned.length > 0, JSON.stringify(median));
  const hb = await simulateJson([sweep, '--scheduler', 'hyperband', '--eta', '3']);
  assert.ok(hb.epochs <= 36 && hb.grid_epochs === 36);
  const loss = await simulateJson([sweep, '--scheduler', 'asha', '--eta', '3', '--metric', 'val_loss']);
  // val_loss = 1 - val_fbeta: the same decisions, minimised.
  assert.deepEqual(
    loss.pruned.map((p) => [p.run, p.epoch]),
    [
      ['p1-k1000', 1],
      ['p2-k2000', 3],
      ['p3-k3000', 1],
    ],
  );
  assert.equal(loss.best.run, 'p0-k0000');
});

test('a folder without curves of the metric is NO_CURVES, a missing path PATH_NOT_FOUND, and the text output names the pruned points', async () => {
  const sweep = sweepOf(HAND);
  const none = await expIn(['sweep', 'simulate', sweep, '--metric', 'val_macro_fbeta']);
  assert.equal(none.code, 1);
  assert.match(none.stderr, /NO_CURVES/);
  const missing = await expIn(['sweep', 'simulate', join(sweep, 'nope')]);
  assert.equal(missing.code, 2);
  assert.match(missing.stderr, /PATH_NOT_FOUND/);
  const text = await expIn(['sweep', 'simulate', sweep, '--eta', '3']);
  assert.equal(text.code, 0, text.stderr);
  assert.match(text.stdout, /p2-k2000: pruned at rung 2 \(epoch 3\)/);
  assert.match(text.stdout, /14 \(39%\)/);
});

test('exp sweep simulate --json through a real pipe parses, for a sweep whose output is larger than the pipe buffer', () => {
  const u = seedrandom('big');
  const curves = Array.from({ length: 400 }, () => {
    const top = 0.5 + 0.4 * u();
    return Array.from({ length: 27 }, (_, e) => top * (1 - Math.exp(-(e + 1) / (1 + 5 * u()))));
  });
  const sweep = sweepOf(curves, 3);
  const r = spawnSync('sh', ['-c', `"${process.execPath}" "${BIN}" sweep simulate "${sweep}" --scheduler asha --workers 4 --json | cat`], {
    encoding: 'utf8',
    maxBuffer: 64 << 20,
  });
  assert.equal(r.status, 0, r.stderr);
  assert.ok(r.stdout.length > 64 * 1024, `only ${r.stdout.length} bytes: the case does not exercise a full pipe`);
  const out = JSON.parse(r.stdout) as Sim;
  assert.equal(out.grid_epochs, 400 * 27);
  assert.ok(out.epochs < out.grid_epochs / 4, `asha used ${out.epochs} of ${out.grid_epochs} epochs`);
  assert.equal(typeof out.best.run, 'string');
  assert.ok(out.true_best.value >= out.best.value);
});
