/**
 * exp's fANOVA importances against real Optuna's get_param_importances (FanovaImportanceEvaluator,
 * its default) on the same recorded trials: the value depends strongly on one param, weakly on
 * a second and not at all on a third. The rankings must agree (Spearman >= 0.8) and name the
 * same most important param; and a constant result explains nothing.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import seedrandom from 'seedrandom';
import { ROOT } from '../helpers/cli.js';
import { fitForest, importances, marginalCurve } from '../../src/report/importance.js';

const PYTHON = join(ROOT, '.venv', 'bin', 'python');

const OPTUNA = `
import json, sys, optuna
optuna.logging.set_verbosity(optuna.logging.WARNING)
task = json.load(sys.stdin)
study = optuna.create_study(direction="maximize")
dists = {k: optuna.distributions.FloatDistribution(lo, hi) for k, (lo, hi) in task["bounds"].items()}
for params, value in zip(task["params"], task["values"]):
    study.add_trial(optuna.trial.create_trial(params=params, distributions=dists, value=value))
imp = optuna.importance.get_param_importances(study, evaluator=optuna.importance.FanovaImportanceEvaluator(seed=0))
print(json.dumps(imp))
`;

/** Spearman's rank correlation of two equal-length lists (no ties expected). */
function spearman(a: readonly number[], b: readonly number[]): number {
  const rank = (xs: readonly number[]): number[] => {
    const order = xs.map((x, i) => [x, i] as const).sort((p, q) => p[0] - q[0]);
    const r = new Array<number>(xs.length);
    order.forEach(([, i], k) => (r[i] = k));
    return r;
  };
  const ra = rank(a);
  const rb = rank(b);
  const n = a.length;
  const d2 = ra.reduce((s, r, i) => s + (r - rb[i]!) ** 2, 0);
  return 1 - (6 * d2) / (n * (n * n - 1));
}

test('fANOVA importances rank the params as Optuna does: lr strongly, dropout weakly, batch and seed not at all', () => {
  assert.ok(existsSync(PYTHON), `${PYTHON} is missing: run bash scripts/setup-test-env.sh`);
  const u = seedrandom('importance');
  const names = ['lr', 'dropout', 'batch', 'seed'];
  const bounds: [number, number][] = [
    [0, 1],
    [0, 0.5],
    [8, 64],
    [0, 100],
  ];
  const params = Array.from({ length: 40 }, () => bounds.map(([lo, hi]) => lo + (hi - lo) * u()));
  // Strong bump in lr, a small slope in dropout, nothing from batch or seed, a little noise.
  const values = params.map(([lr, dropout]) => 0.9 - 2 * (lr! - 0.3) ** 2 - 0.6 * dropout! + 0.005 * u());
  const mine = importances(fitForest(params, values, bounds, { seed: 0 }));
  const r = spawnSync(PYTHON, ['-c', OPTUNA], {
    input: JSON.stringify({
      bounds: Object.fromEntries(names.map((n, i) => [n, bounds[i]])),
      params: params.map((p) => Object.fromEntries(names.map((n, i) => [n, p[i]]))),
      values,
    }),
    encoding: 'utf8',
    timeout: 300_000,
  });
  assert.equal(r.status, 0, r.stderr);
  const theirs = JSON.parse(r.stdout) as Record<string, number>;
  const ref = names.map((n) => theirs[n]!);
  console.log(
    `# exp    ${names.map((n, i) => `${n}=${mine[i]!.toFixed(3)}`).join(' ')}\n# optuna ${names.map((n, i) => `${n}=${ref[i]!.toFixed(3)}`).join(' ')}`,
  );
  assert.ok(Math.abs(mine.reduce((a, b) => a + b, 0) - 1) < 1e-9, 'importances sum to 1');
  const top = (xs: number[]): string => names[xs.indexOf(Math.max(...xs))]!;
  assert.equal(top(mine), 'lr');
  assert.equal(top(mine), top(ref));
  assert.ok(mine[0]! > 0.5, `lr explains most: ${mine[0]}`);
  assert.ok(mine[1]! > mine[2]! && mine[1]! > mine[3]!, `dropout above batch and seed: ${mine}`);
  const rho = spearman(mine, ref);
  assert.ok(rho >= 0.8, `Spearman ${rho} between exp ${mine} and optuna ${ref}`);
});

test('the marginal of the most important param follows the function: highest near lr = 0.3', () => {
  const u = seedrandom('marginal');
  const bounds: [number, number][] = [
    [0, 1],
    [0, 1],
  ];
  const params = Array.from({ length: 40 }, () => [u(), u()]);
  const values = params.map(([a]) => -((a! - 0.3) ** 2));
  const forest = fitForest(params, values, bounds, { seed: 1, trees: 16 });
  const xs = [0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.7, 0.9, 1];
  const m = marginalCurve(forest, 0, xs);
  const best = xs[m.indexOf(Math.max(...m))]!;
  assert.ok(best >= 0.2 && best <= 0.4, `marginal peaks at ${best}: ${m}`);
  assert.ok(m[8]! < m[3]!);
});

test('a constant result explains nothing: every importance is 0', () => {
  const params = Array.from({ length: 10 }, (_, i) => [i, i % 3]);
  const imp = importances(
    fitForest(params, new Array<number>(10).fill(0.5), [
      [0, 9],
      [0, 2],
    ]),
  );
  assert.deepEqual(imp, [0, 0]);
});
