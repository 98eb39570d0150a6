/**
 * ASHA and Hyperband in a live sweep, stopping-based as Ray Tune runs ASHA: a point's child
 * waits at each rung's epoch (its launch settings' holdEpochs) until the launcher has decided from the other
 * points' recorded curves (src/search/asha.ts's ashaVerdict); a point that goes on trains on
 * in the same process (no epoch trained twice), one that fails the rung ends `pruned` there
 * with the numbers of the decision as its reason. The curves come from the run folders (local
 * sweeps) or Redis (queued sweeps), as for median stopping.
 */
import { ashaVerdict, describePrune, DEFAULT_ETA, Hyperband, promotable, type Mode } from '../search/asha.js';
import { epochMetricOf, metricMode, type Ranking } from '../config/metric.js';
import type { Curve, Curves, EarlyStopRule, Judgement, SweepPruner } from './prune.js';

/**
 * The metric a scheduler follows: early_stop.metric when given, else the sweep's ranking metric
 * per epoch (sweep.metric final_val_fbeta -> val_fbeta, with its direction), else checkpoint.monitor.
 */
export function schedulerMetric(rule: EarlyStopRule, ranking: Ranking, monitor: string): { metric: string; mode: Mode } {
  if (rule.metric) return { metric: rule.metric, mode: metricMode(rule.metric, rule.mode) };
  const epochMetric = epochMetricOf(ranking);
  if (epochMetric) return { metric: epochMetric, mode: rule.mode === 'min' || rule.mode === 'max' ? rule.mode : ranking.mode };
  return { metric: monitor, mode: metricMode(monitor, rule.mode) };
}

export interface AshaSetup {
  rule: EarlyStopRule;
  metric: string;
  mode: Mode;
  /** The sweep's name (with a point's index it picks the point's Hyperband bracket, as in exp sweep simulate). */
  study: string;
  /** The most epochs a point trains (Hyperband's max resource). */
  maxEpochs: number;
  /** A point's index in the sweep (its number). */
  indexOf: (point: string) => number | undefined;
  /** The curves of the points of one bracket (0 for plain ASHA). */
  curvesOf: (bracket: number) => Curves;
}

/** `rule: asha` and `rule: hyperband` as a SweepPruner. */
export class AshaPruner implements SweepPruner {
  readonly eta: number;
  readonly minEpochs: number;
  private readonly hyperband: Hyperband | undefined;

  constructor(private readonly s: AshaSetup) {
    const kind = s.rule.rule === 'hyperband' ? 'hyperband' : 'asha';
    this.eta = s.rule.reduction_factor ?? DEFAULT_ETA[kind];
    this.minEpochs = s.rule.min_epochs ?? 1;
    this.hyperband =
      kind === 'hyperband'
        ? new Hyperband({
            minResource: this.minEpochs,
            maxResource: Math.max(this.minEpochs, s.maxEpochs),
            eta: this.eta,
            mode: s.mode,
            study: s.study,
            ...(s.rule.brackets ? { brackets: s.rule.brackets } : {}),
          })
        : undefined;
  }

  /** The point's bracket (its early-stopping rate): 0 for plain ASHA. */
  bracketOf(point: string): number {
    const index = this.s.indexOf(point);
    return this.hyperband && index !== undefined ? this.hyperband.bracketOf(index) : 0;
  }

  holdEpochs(point: string, epochs: number): number[] {
    const out: number[] = [];
    for (let e = this.minEpochs * this.eta ** this.bracketOf(point); e < epochs; e *= this.eta) out.push(e);
    return out;
  }

  async decide(point: string, epoch: number, metrics: Readonly<Record<string, number>>): Promise<Judgement> {
    const bracket = this.bracketOf(point);
    const curves = this.s.curvesOf(bracket);
    const v = metrics[this.s.metric];
    await curves.report(point, this.s.metric, epoch, v ?? NaN);
    if (!this.holdEpochs(point, epoch + 1).includes(epoch)) return {}; // not a rung of its bracket
    const all = await curves.all(this.s.metric);
    const self = all.get(point) ?? [];
    const others: Curve[] = [...all].filter(([k]) => k !== point).map(([, c]) => c);
    const settings = { minResource: this.minEpochs, eta: this.eta, mode: this.s.mode, earlyStoppingRate: bracket };
    const d = ashaVerdict(self, others, epoch, settings);
    if (d.prune) return { prune: describePrune(this.hyperband ? { ...d.reason, bracket } : d.reason, this.s.metric) };
    return { note: this.continued(self, others, epoch, bracket) };
  }

  /** "continued at rung 1 (epoch 1): val_fbeta 0.52 >= cut-off 0.41 = top 1/2 of 3 points (rank 1, 1 go on)". */
  private continued(self: Curve, others: readonly Curve[], epoch: number, bracket: number): string {
    const value = self[epoch - 1] ?? NaN;
    const peers = others.filter((c) => c.length >= epoch && !Number.isNaN(c[epoch - 1])).map((c) => c[epoch - 1]!);
    const p = promotable(value, [...peers, value], this.eta, this.s.mode);
    const rung = Math.round(Math.log(epoch / this.minEpochs) / Math.log(this.eta)) - bracket + 1;
    const fmt = (x: number): string => String(Number(x.toPrecision(4)));
    const n = peers.length + 1;
    return `continued at rung ${rung} (epoch ${epoch})${this.hyperband ? ` of bracket ${bracket}` : ''}: ${this.s.metric} ${fmt(value)} ${this.s.mode === 'max' ? '>=' : '<='} cut-off ${fmt(p.cutoff)} = top 1/${this.eta} of ${n} point${n === 1 ? '' : 's'} (rank ${p.rank}, ${p.keep} go on)`;
  }
}
