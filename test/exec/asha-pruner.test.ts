/**
 * The live ASHA/Hyperband pruner (exec/asha-pruner.ts) over real run folders' metrics.jsonl:
 * with the points reporting one after another, its decisions from the recorded curves are the
 * decisions of the Optuna-equivalent Hyperband and Asha classes (src/search/asha.ts) fed the same
 * reports, point for point and rung for rung; the rungs a child waits at are its bracket's.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { tempDir } from '../helpers/cli.js';
import { AshaPruner, schedulerMetric } from '../../src/exec/asha-pruner.js';
import { StoreCurves, type EarlyStopRule } from '../../src/exec/prune.js';
import { Asha, Hyperband, describePrune } from '../../src/search/asha.js';
import { writeMetrics } from '../../src/store/run.js';
import type { EpochLine } from '../../src/store/types.js';
import { rankingOf } from '../../src/config/metric.js';

/** A deterministic pseudo-random curve per point: some improve fast, some slowly. */
function curveOf(i: number, epochs: number): number[] {
  let s = (i + 1) * 2654435761;
  const rnd = (): number => (s = (s * 1103515245 + 12345) >>> 0) / 2 ** 32;
  const rate = 0.05 + rnd() * 0.4;
  return Array.from({ length: epochs }, (_, e) => 0.7 * Math.exp(-rate * (e + 1)) + rnd() * 0.02);
}

async function replay(rule: EarlyStopRule, n: number, epochs: number): Promise<void> {
  const sweep = tempDir('exp-asha-pruner-');
  const names = Array.from({ length: n }, (_, i) => `p${String(i).padStart(2, '0')}`);
  const dirs = names.map((p) => join(sweep, p));
  for (const d of dirs) mkdirSync(d);
  const { metric, mode } = schedulerMetric(rule, rankingOf({ name: 'best_val_loss' }), 'val_loss');
  assert.deepEqual([metric, mode], ['val_loss', 'min']);
  const pruner: AshaPruner = new AshaPruner({
    rule,
    metric,
    mode,
    study: 'sweep-x',
    maxEpochs: epochs,
    indexOf: (p) => names.indexOf(p),
    curvesOf: (b) => new StoreCurves(dirs.filter((_, i) => pruner.bracketOf(names[i]!) === b)),
  });
  const eta = rule.reduction_factor!;
  const hb = rule.rule === 'hyperband' ? new Hyperband({ minResource: rule.min_epochs!, maxResource: epochs, eta, mode, study: 'sweep-x' }) : undefined;
  const asha = new Asha({ minResource: rule.min_epochs!, eta, mode });
  {
    let prunedCount = 0;
    for (let i = 0; i < n; i++) {
      const bracket = hb ? hb.bracketOf(i) : 0;
      assert.equal(pruner.bracketOf(names[i]!), bracket);
      const first = rule.min_epochs! * eta ** bracket;
      const rungs = [first, first * eta, first * eta * eta].filter((e) => e < epochs);
      assert.deepEqual(pruner.holdEpochs(names[i]!, epochs), rungs, `${names[i]}: the rungs of bracket ${bracket}`);
      const curve = curveOf(i, epochs);
      const lines: EpochLine[] = [];
      for (let e = 1; e <= epochs; e++) {
        lines.push({ epoch: e, val_loss: curve[e - 1]! });
        writeMetrics(dirs[i]!, lines);
        const got = await pruner.decide(names[i]!, e, { val_loss: curve[e - 1]! });
        const want = hb ? hb.report(i, e, curve[e - 1]!) : asha.report(String(i), e, curve[e - 1]!);
        assert.equal(got.prune, want.prune ? describePrune(want.reason, 'val_loss') : undefined, `${names[i]} epoch ${e}`);
        if (rungs.includes(e) && !got.prune) assert.match(got.note!, new RegExp(`^continued at rung \\d+ \\(epoch ${e}\\)`));
        if (got.prune) {
          prunedCount++;
          break;
        }
      }
    }
    assert.ok(prunedCount > 0 && prunedCount < n, `some pruned, not all: ${prunedCount} of ${n}`);
  }
}

test('live ASHA decisions from the run folders equal Asha.report fed the same reports (eta 2, 16 points, 8 epochs)', async () => {
  await replay({ rule: 'asha', min_epochs: 1, reduction_factor: 2 } as EarlyStopRule, 16, 8);
});

test('live Hyperband: each point waits at its own bracket’s rungs and is judged among its bracket only, as Hyperband.report (eta 3, 30 points, 9 epochs)', async () => {
  await replay({ rule: 'hyperband', min_epochs: 1, reduction_factor: 3 } as EarlyStopRule, 30, 9);
});
