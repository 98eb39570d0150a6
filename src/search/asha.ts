/**
 * Asynchronous successive halving (ASHA, Li et al. 2020) and Hyperband as brackets of it,
 * decision for decision as Optuna's SuccessiveHalvingPruner and HyperbandPruner (no bootstrap):
 *
 * - Rung k (k = 0, 1, ...; rung k + 1 in reasons and messages) ends at step
 *   min_resource * eta^(s + k) (s: the bracket's early-stopping rate, 0 for plain ASHA). A point reporting a step at or past the end of its next rung records its value
 *   there; it goes on only if that value is in the top 1/eta of every value recorded at that rung
 *   so far, its own included: with n values, it must be at least as good as the
 *   max(floor(n/eta), 1)-th best (ties go on). So the first points at a rung (n < eta) go on
 *   only as the best so far. A NaN value is pruned.
 * - Values stay recorded after their point is pruned: later points compete with them too.
 * - Hyperband: floor(log_eta(max/min)) + 1 brackets, bracket b starting its rungs at
 *   min * eta^b; a point's bracket is crc32("<study>_<number>") modulo the brackets' budgets
 *   ceil(B * eta^s / (s + 1)) (s = B - 1 - b), so it is fixed by the point's number alone; a
 *   point competes only with the points of its bracket.
 *
 * Pure: the classes' rung records are rebuilt by replaying the reports in order, and
 * ashaVerdict decides from the points' curves alone (what a live sweep's run folders hold).
 */
import { crc32 } from './rng.js';

export type Mode = 'min' | 'max';

export interface AshaSettings {
  /** The first rung's step (Optuna's min_resource, Ray's grace_period). */
  minResource: number;
  /** Keep the top 1/eta at each rung (Optuna's reduction_factor). */
  eta: number;
  /** Rungs start at minResource * eta^rate (Optuna's min_early_stopping_rate). */
  earlyStoppingRate?: number;
  mode: Mode;
}

/** Why a point was pruned: the numbers behind the decision. */
export interface PruneReason {
  /** The rung, 1-based (the first rung is 1, ending at min_resource), and the step (epoch) it ends at. */
  rung: number;
  step: number;
  value: number;
  /** The value a point had to reach (at least as good as) to go on; NaN when the value was NaN. */
  cutoff: number;
  /** 1-based rank of the value among those recorded at the rung (1 = best). */
  rank: number;
  /** Values recorded at the rung, this one included. */
  points: number;
  /** How many of them went on at most (max(floor(points/eta), 1)). */
  keep: number;
  eta: number;
  mode: Mode;
  bracket?: number;
}

export type Decision = { prune: false } | { prune: true; reason: PruneReason };

/** "pruned at rung 2 (epoch 3): val_fbeta 0.71 < cut-off 0.74 = top 1/3 of 7 points (rank 4, 2 go on)". */
export function describePrune(r: PruneReason, metric: string): string {
  const where = `pruned at rung ${r.rung} (epoch ${r.step})${r.bracket === undefined ? '' : ` of bracket ${r.bracket}`}`;
  if (Number.isNaN(r.value)) return `${where}: ${metric} is NaN`;
  const fmt = (v: number): string => String(Number(v.toPrecision(4)));
  const cmp = r.mode === 'max' ? '<' : '>';
  return `${where}: ${metric} ${fmt(r.value)} ${cmp} cut-off ${fmt(r.cutoff)} = top 1/${r.eta} of ${r.points} point${r.points === 1 ? '' : 's'} (rank ${r.rank}, ${r.keep} go on)`;
}

/** The cut-off of `values` (the point's own included) and whether `value` makes it. */
export function promotable(value: number, values: readonly number[], eta: number, mode: Mode): { ok: boolean; cutoff: number; rank: number; keep: number } {
  const keep = Math.max(Math.floor(values.length / eta), 1);
  const sorted = [...values].sort((a, b) => a - b);
  const cutoff = mode === 'max' ? sorted[sorted.length - keep]! : sorted[keep - 1]!;
  const rank = 1 + values.filter((v) => (mode === 'max' ? v > value : v < value)).length;
  return { ok: mode === 'max' ? value >= cutoff : value <= cutoff, cutoff, rank, keep };
}

/** One ASHA bracket: the values recorded at each rung, and each point's completed rungs. */
export class Asha {
  private readonly rungs: number[][] = [];
  private readonly done = new Map<string, number>();

  constructor(readonly settings: AshaSettings) {
    if (!(settings.minResource >= 1) || !(settings.eta >= 2))
      throw new RangeError(`ASHA needs min_resource >= 1 and eta >= 2, got ${settings.minResource}, ${settings.eta}`);
  }

  /** The step rung `k` ends at. */
  rungStep(k: number): number {
    return this.settings.minResource * this.settings.eta ** ((this.settings.earlyStoppingRate ?? 0) + k);
  }

  /** Values recorded at rung `k` so far, in the order they came. */
  recorded(k: number): readonly number[] {
    return this.rungs[k] ?? [];
  }

  /** `point` reports `value` at `step` (Optuna's trial.report + should_prune). */
  report(point: string, step: number, value: number): Decision {
    let rung = this.done.get(point) ?? 0;
    for (;;) {
      const end = this.rungStep(rung);
      if (step < end) return { prune: false };
      const base = { rung: rung + 1, step: end, value, eta: this.settings.eta, mode: this.settings.mode };
      if (Number.isNaN(value))
        return {
          prune: true,
          reason: { ...base, cutoff: NaN, rank: (this.rungs[rung]?.length ?? 0) + 1, points: (this.rungs[rung]?.length ?? 0) + 1, keep: 0 },
        };
      const values = (this.rungs[rung] ??= []);
      values.push(value);
      this.done.set(point, rung + 1);
      const p = promotable(value, values, this.settings.eta, this.settings.mode);
      if (!p.ok) return { prune: true, reason: { ...base, cutoff: p.cutoff, rank: p.rank, points: values.length, keep: p.keep } };
      rung++;
    }
  }
}

/**
 * The same decision from the curves alone, as a live sweep has them in its run folders (or
 * Redis): `self` is the point's curve up to `epoch`, `others` the other points' curves as far
 * as they got (of the same bracket, for Hyperband). A point pruned at a rung stopped there, so
 * the values recorded at the rung so far are exactly the others' finite values at its epoch.
 */
export function ashaVerdict(self: readonly number[], others: readonly (readonly number[])[], epoch: number, settings: AshaSettings): Decision {
  const { minResource, eta, mode } = settings;
  const rate = settings.earlyStoppingRate ?? 0;
  const k = Math.round(Math.log(epoch / minResource) / Math.log(eta)) - rate;
  if (k < 0 || minResource * eta ** (rate + k) !== epoch || self.length < epoch) return { prune: false };
  const value = self[epoch - 1]!;
  const base = { rung: k + 1, step: epoch, value, eta, mode };
  const peers = others.filter((c) => c.length >= epoch && !Number.isNaN(c[epoch - 1])).map((c) => c[epoch - 1]!);
  if (Number.isNaN(value)) return { prune: true, reason: { ...base, cutoff: NaN, rank: peers.length + 1, points: peers.length + 1, keep: 0 } };
  const p = promotable(value, [...peers, value], eta, mode);
  return p.ok ? { prune: false } : { prune: true, reason: { ...base, cutoff: p.cutoff, rank: p.rank, points: peers.length + 1, keep: p.keep } };
}

export interface HyperbandSettings {
  minResource: number;
  /** The most steps a point trains (training.epochs). */
  maxResource: number;
  eta: number;
  mode: Mode;
  /** The study's name: with the point's number it picks the point's bracket. */
  study: string;
  /** Default floor(log_eta(max/min)) + 1. */
  brackets?: number;
}

/** Hyperband: ASHA brackets with staggered first rungs, a point's bracket fixed by its number. */
export class Hyperband {
  readonly brackets: Asha[];
  readonly budgets: number[];
  private readonly total: number;

  constructor(readonly settings: HyperbandSettings) {
    const { minResource, maxResource, eta } = settings;
    const n = settings.brackets ?? Math.floor(Math.log(maxResource / minResource) / Math.log(eta)) + 1;
    if (!(n >= 1)) throw new RangeError(`Hyperband needs max_resource >= min_resource, got ${minResource}..${maxResource}`);
    this.budgets = Array.from({ length: n }, (_, b) => Math.ceil((n * eta ** (n - 1 - b)) / (n - b)));
    this.total = this.budgets.reduce((a, b) => a + b, 0);
    this.brackets = this.budgets.map((_, b) => new Asha({ minResource, eta, mode: settings.mode, earlyStoppingRate: b }));
  }

  /** The bracket of point number `number` (Optuna's _get_bracket_id). */
  bracketOf(number: number): number {
    let r = crc32(`${this.settings.study}_${number}`) % this.total;
    for (let b = 0; b < this.budgets.length; b++) {
      r -= this.budgets[b]!;
      if (r < 0) return b;
    }
    return this.budgets.length - 1;
  }

  report(number: number, step: number, value: number): Decision {
    const b = this.bracketOf(number);
    const d = this.brackets[b]!.report(String(number), step, value);
    return d.prune ? { prune: true, reason: { ...d.reason, bracket: b } } : d;
  }
}

/** The defaults exp uses: eta 4 for ASHA (Optuna's SuccessiveHalvingPruner and Ray's ASHAScheduler), 3 for Hyperband (Optuna's HyperbandPruner, Ray's HyperBandScheduler, the Hyperband paper). */
export const DEFAULT_ETA = { asha: 4, hyperband: 3 } as const;
