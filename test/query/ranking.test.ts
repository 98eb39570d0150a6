/**
 * One ranking metric for a sweep (sweep.metric, default final_val_fbeta), used and printed by
 * every ranking: exp compare, exp runs --sort, exp ensemble --top and the MLflow parent's best
 * child and sweep table. A 2x2 sweep planned from a real file (sweep.yaml, index.json, point
 * folders), with results written by hand where val_loss and F2 disagree, as a newcomer's did.
 */
import { before, test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { exp, tempDir } from '../helpers/cli.js';
import { planExperiment } from '../../src/sweep/plan.js';
import { writePlan } from '../../src/store/sweep.js';
import { sweepTable } from '../../src/query/runs.js';
import { parentSummary } from '../../src/track/sweep-parent.js';
import { metricMode, rankingOf } from '../../src/config/metric.js';
import { MedianPruner, type Curves } from '../../src/exec/prune.js';
import type { SweepIndex } from '../../src/store/types.js';

let tmp: string;
const GRID = 'sweep: { grid: { training.learning_rate: [0.001, 0.0005], model.head.units: [16, 32] } }';

/** Results per point in sweep order (lr 0.001/16, 0.001/32, 0.0005/16, 0.0005/32): the lowest val_loss is not the best F2. */
const RESULTS = [
  { val_loss: 0.2, val_fbeta: 0.683 },
  { val_loss: 0.3, val_fbeta: 0.65 },
  { val_loss: 0.22, val_fbeta: 0.69 },
  { val_loss: 0.25, val_fbeta: 0.701 },
];

function planSweep(name: string, extra = ''): { dir: string; index: SweepIndex; keys: string[] } {
  const file = join(tmp, `${name}.yaml`);
  writeFileSync(file, [`name: ${name}`, 'data: { path: ./data }', extra ? GRID.replace('} }', `}, ${extra} }`) : GRID].join('\n') + '\n');
  const r = planExperiment(file);
  assert.ok(r.plan, JSON.stringify(r.problems));
  const { dir, index } = writePlan(join(tmp, 'runs'), r.plan);
  return { dir, index, keys: r.plan.points.map((p) => p.key) };
}

function finish(sweepDir: string, index: SweepIndex): void {
  index.points.forEach((p, i) => {
    const m = RESULTS[i]!;
    const d = join(sweepDir, p.dir);
    const best = { epoch: 2, metrics: { loss: 0.1, fbeta: 0.8, ...m } };
    writeFileSync(join(d, 'run.json'), JSON.stringify({ key: p.key, status: 'completed', started: '2026-01-01T00:00:00Z', ended: '2026-01-01T00:01:00Z' }));
    writeFileSync(
      join(d, 'summary.json'),
      JSON.stringify({
        status: 'completed',
        backend: 'wasm',
        epochs_completed: 2,
        epochs_planned: 2,
        monitor: 'val_loss',
        mode: 'min',
        best,
        final: m,
        baseline: { constant_top_k: 2, val_fbeta: 0.42 },
        duration_s: 60,
      }),
    );
  });
}

let sweep: { dir: string; index: SweepIndex; keys: string[] };

before(() => {
  tmp = tempDir('exp-ranking-');
  sweep = planSweep('newcomer');
  finish(sweep.dir, sweep.index);
});

const names = (rows: readonly { name: string }[]): string[] => rows.map((r) => r.name);

test('a 2x2 sweep ranks by final_val_fbeta by default: F2 0.701 above 0.683 though 0.683 has the lowest val_loss (issue 18 item 13)', () => {
  const t = sweepTable(sweep.dir);
  assert.deepEqual([t.metric, t.mode], ['final_val_fbeta', 'max']);
  const expected = [3, 2, 0, 1].map((i) => sweep.index.points[i]!.dir);
  assert.deepEqual(names(t.rows), expected);

  const cmp = exp(['compare', sweep.dir]);
  assert.equal(cmp.code, 0, cmp.stderr);
  assert.match(cmp.stdout, /4 points, ranked by final_val_fbeta \(max\), best first/);
  const json = JSON.parse(exp(['compare', sweep.dir, '--json']).stdout) as { name: string }[];
  assert.deepEqual(names(json), expected);

  // The MLflow parent: best child, sweep_best_<metric>, the note's table in the same order.
  const s = parentSummary(sweep.dir, { trackingUri: 'http://nowhere', experiment: 'newcomer' });
  assert.equal(s.best?.name, expected[0]);
  assert.equal(s.metrics.sweep_best_final_val_fbeta, 0.701);
  assert.deepEqual([s.tags['exp.rank_metric'], s.tags['exp.rank_mode']], ['final_val_fbeta', 'max']);
  const note = s.tags['mlflow.note.content']!;
  assert.match(note, /ranked by final_val_fbeta \(max\), best first; best: `/);
  const tableRows = note.split('\n').filter((l) => l.startsWith('| 0.'));
  assert.deepEqual(
    tableRows.map((l) => l.split(' | ').find((c) => c.startsWith('learning_rate') || c.includes('='))),
    expected,
  );

  // exp ensemble --top: says how it ranked, and takes the best point first (its first member is the one it names as unusable here: no model).
  const ens = exp(['ensemble', sweep.dir, '--top', '2', '--out', join(tmp, 'ens')]);
  assert.match(ens.stderr, /top 2 of 4 points of .*, ranked by final_val_fbeta \(max\)/);
  assert.match(ens.stderr, new RegExp(`${expected[0]!.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')} has no saved split`));
});

test("the parent lists a swept setting's values in the sweep's order, whatever the ranking (issue 18 item 11)", () => {
  // Ranked, the best point (lr 0.0005, units 32) comes first; the params must not follow that.
  const s = parentSummary(sweep.dir, { trackingUri: 'http://nowhere', experiment: 'newcomer' });
  assert.deepEqual(s.best?.params, { 'training.learning_rate': 0.0005, 'model.head.units': 32 });
  assert.equal(s.params['sweep.model.head.units'], '16, 32');
  assert.equal(s.params['sweep.training.learning_rate'], '0.001, 0.0005');
});

test('sweep.metric declares the ranking for every ranking; it changes neither run keys nor the sweep folder', () => {
  const byLoss = planSweep('newcomer', 'metric: { name: final_val_loss }');
  assert.equal(byLoss.dir, sweep.dir, 'the same sweep folder');
  assert.deepEqual(byLoss.keys, sweep.keys, 'the same run keys');
  assert.match(readFileSync(join(sweep.dir, 'sweep.yaml'), 'utf8'), /name: final_val_loss/);
  const t = sweepTable(sweep.dir);
  assert.deepEqual([t.metric, t.mode], ['final_val_loss', 'min']);
  assert.deepEqual(
    names(t.rows),
    [0, 2, 3, 1].map((i) => sweep.index.points[i]!.dir),
  );
  const cmp = exp(['compare', sweep.dir]);
  assert.match(cmp.stdout, /ranked by final_val_loss \(min\), best first/);
  const s = parentSummary(sweep.dir, { trackingUri: 'http://nowhere', experiment: 'newcomer' });
  assert.equal(s.metrics.sweep_best_final_val_loss, 0.2);
  // An explicit mode wins over the name; --sort still ranks by what it names.
  planSweep('newcomer', 'metric: { name: val_fbeta, mode: min }');
  assert.deepEqual([sweepTable(sweep.dir).metric, sweepTable(sweep.dir).mode], ['val_fbeta', 'min']);
  assert.match(exp(['compare', sweep.dir, '--sort', 'final_val_fbeta']).stdout, /ranked by final_val_fbeta \(max\)/);
  planSweep('newcomer'); // back to the default for the other tests
  assert.equal(sweepTable(sweep.dir).metric, 'final_val_fbeta');
});

test('exp runs --sort prints its ranking and direction', () => {
  const r = exp(['runs', sweep.dir, '--sort', 'val_loss']);
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /^ranked by val_loss \(min\), best first$/m);
  assert.doesNotMatch(exp(['runs', sweep.dir]).stdout, /ranked by/);
});

test('a sweep.metric exp does not know is refused: in the file (CONFIG_INVALID) and in a hand-edited sweep.yaml (RUN_FILE_CORRUPT)', () => {
  const file = join(tmp, 'bad.yaml');
  writeFileSync(file, ['name: bad', 'data: { path: ./data }', GRID.replace('} }', '}, metric: { name: val_f2 } }')].join('\n') + '\n');
  const v = exp(['validate', file]);
  assert.equal(v.code, 2, v.stdout + v.stderr);
  assert.match(v.stdout + v.stderr, /sweep\.metric\.name/);

  const other = planSweep('edited');
  const yaml = join(other.dir, 'sweep.yaml');
  writeFileSync(yaml, readFileSync(yaml, 'utf8').replace(/name: final_val_fbeta/, 'name: accuracy'));
  const cmp = exp(['compare', other.dir]);
  assert.equal(cmp.code, 1, cmp.stdout + cmp.stderr);
  assert.match(cmp.stderr, /sweep\.yaml .*sweep\.metric .* is not a metric exp ranks by[\s\S]*\[RUN_FILE_CORRUPT\]/);
});

test('one rule for a direction: a name ending in loss is minimised, anything else maximised, unless a mode is given', () => {
  assert.deepEqual(
    ['val_loss', 'final_val_loss', 'best_loss', 'final_val_fbeta', 'val_fbeta_tuned', 'best_epoch'].map((m) => metricMode(m)),
    ['min', 'min', 'min', 'max', 'max', 'max'],
  );
  assert.equal(metricMode('val_loss', 'max'), 'max');
  assert.deepEqual(rankingOf(undefined), { metric: 'final_val_fbeta', mode: 'max' });
  assert.deepEqual(rankingOf({ name: 'best_val_loss', mode: 'auto' }), { metric: 'best_val_loss', mode: 'min' });
  const none: Curves = { all: async () => new Map(), report: async () => undefined };
  const rule = { rule: 'median' as const, metric: null, mode: 'auto' as const, grace_epochs: 1, min_points: 3 };
  assert.equal(new MedianPruner(rule, 'val_loss', none).mode, 'min');
  assert.equal(new MedianPruner({ ...rule, metric: 'val_fbeta' }, 'val_loss', none).mode, 'max');
});
