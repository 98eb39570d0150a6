/**
 * ASHA decided from the curves alone (what a live sweep's run folders or Redis hold) equals the
 * replayed state machine (itself checked against Optuna in optuna.test.ts), whatever the order
 * the points' epochs come in; and Hyperband's brackets are fixed by the point's number.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import seedrandom from 'seedrandom';
import { Asha, Hyperband, ashaVerdict, type AshaSettings } from '../../src/search/asha.js';

test('ashaVerdict on the curves so far decides as the replayed ASHA, for 40 random interleavings and three settings', () => {
  const u = seedrandom('stateless');
  const settings: AshaSettings[] = [
    { minResource: 1, eta: 4, mode: 'max' },
    { minResource: 2, eta: 3, mode: 'min' },
    { minResource: 1, eta: 2, mode: 'max', earlyStoppingRate: 1 },
  ];
  for (let round = 0; round < 40; round++) {
    const s = settings[round % settings.length]!;
    const curves = Array.from({ length: 30 }, () => Array.from({ length: 16 }, () => (u() < 0.02 ? NaN : Math.round(u() * 20) / 20)));
    const asha = new Asha(s);
    const seen: number[][] = curves.map(() => []);
    const alive = curves.map((_, i) => i);
    let decisions = 0;
    while (alive.length) {
      const k = Math.floor(u() * Math.min(alive.length, 5));
      const i = alive[k]!;
      const epoch = seen[i]!.push(curves[i]![seen[i]!.length]!);
      const live = asha.report(String(i), epoch, seen[i]![epoch - 1]!);
      const fromCurves = ashaVerdict(
        seen[i]!,
        seen.filter((_, j) => j !== i),
        epoch,
        s,
      );
      assert.deepEqual(fromCurves, live, `round ${round}, point ${i}, epoch ${epoch}`);
      if (live.prune) decisions++;
      if (live.prune || epoch === 16) alive.splice(k, 1);
    }
    assert.ok(decisions > 0, `round ${round} pruned nothing`);
  }
});

test("Hyperband's brackets: floor(log_eta(max/min)) + 1 of them, budgets as Optuna's, a point's bracket fixed by its number", () => {
  const hb = new Hyperband({ minResource: 1, maxResource: 27, eta: 3, mode: 'max', study: 'sweep-x' });
  assert.equal(hb.brackets.length, 4);
  // ceil(4 * 3^s / (s + 1)) for s = 3, 2, 1, 0.
  assert.deepEqual(hb.budgets, [27, 12, 6, 4]);
  assert.deepEqual(
    hb.brackets.map((_, b) => hb.brackets[b]!.rungStep(0)),
    [1, 3, 9, 27],
  );
  const again = new Hyperband({ minResource: 1, maxResource: 27, eta: 3, mode: 'max', study: 'sweep-x' });
  const counts = [0, 0, 0, 0];
  for (let n = 0; n < 490; n++) {
    assert.equal(again.bracketOf(n), hb.bracketOf(n));
    counts[hb.bracketOf(n)]!++;
  }
  // Shares near the budgets' 27:12:6:4 (of 49).
  assert.ok(counts[0]! > counts[1]! && counts[1]! > counts[2]! && counts[2]! > 0 && counts[3]! > 0, String(counts));
});
