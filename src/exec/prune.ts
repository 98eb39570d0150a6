/**
 * Median stopping for sweeps (sweep.early_stop): after `grace_epochs`, a point whose best
 * metric so far at epoch e is worse than the median of the other points' bests at epoch e is
 * pruned, once at least `min_points` others have reached e. The rule is pure; the curves of
 * the other points come from the run store (local sweeps) or from Redis (queued sweeps).
 */
import { basename } from 'node:path';
import type { ResolvedExperiment } from '../config/types.gen.js';
import { readMetrics } from '../store/run.js';
import { metricMode } from '../config/metric.js';
import { medianVerdict } from '../search/median.js';

export type EarlyStopRule = NonNullable<NonNullable<ResolvedExperiment['sweep']>['early_stop']>;

/** A point's metric per epoch (index 0 = epoch 1). */
export type Curve = readonly number[];

/** Where the other points' curves come from. */
export interface Curves {
  /** Every point's curve of `metric`, by point id. */
  all(metric: string): Promise<Map<string, Curve>>;
  /** Records a point's value at an epoch (a no-op where the curves are read from the points' own files). */
  report(point: string, metric: string, epoch: number, value: number): Promise<void>;
}

/** What a sweep's scheduler says after a point's epoch: prune it (the reason), or let it go on (with a note at a rung). */
export interface Judgement {
  prune?: string;
  note?: string;
}

/** A sweep's early-termination rule as a launcher (exp run --workers, exp worker) uses it. */
export interface SweepPruner {
  /** The epochs at which `point`'s child must wait for the verdict before training on (ASHA's rungs); none for median stopping. */
  holdEpochs(point: string, epochs: number): number[];
  decide(point: string, epoch: number, metrics: Readonly<Record<string, number>>): Promise<Judgement>;
}

/** Decides, after each epoch a point reports, whether it should be pruned. */
export class MedianPruner implements SweepPruner {
  readonly metric: string;
  readonly mode: 'min' | 'max';

  constructor(
    private readonly rule: EarlyStopRule,
    monitor: string,
    private readonly curves: Curves,
  ) {
    this.metric = rule.metric ?? monitor;
    this.mode = metricMode(this.metric, rule.mode);
  }

  holdEpochs(): number[] {
    return []; // median stopping decides while the point trains on: a late verdict stops it at the next batch
  }

  async decide(point: string, epoch: number, metrics: Readonly<Record<string, number>>): Promise<Judgement> {
    const why = await this.judge(point, epoch, metrics);
    return why ? { prune: why } : {};
  }

  /** The reason to prune `point` after `epoch`, or undefined to let it go on. */
  async judge(point: string, epoch: number, metrics: Readonly<Record<string, number>>): Promise<string | undefined> {
    const v = metrics[this.metric];
    if (v !== undefined) await this.curves.report(point, this.metric, epoch, v);
    const all = await this.curves.all(this.metric);
    const self = all.get(point);
    if (!self) return undefined;
    const others = [...all].filter(([k]) => k !== point).map(([, c]) => c);
    const verdict = medianVerdict(self, others, epoch, this.rule, this.mode);
    if (!verdict.prune) return undefined;
    return `pruned by median stopping: best ${this.metric} ${verdict.value!.toPrecision(4)} by epoch ${epoch} is worse than the median ${verdict.median!.toPrecision(4)} of ${verdict.peers} other points`;
  }
}

/** Curves read from the run folders' metrics.jsonl (a local sweep: every point's folder is here). */
export class StoreCurves implements Curves {
  constructor(private readonly dirs: readonly string[]) {}

  async all(metric: string): Promise<Map<string, Curve>> {
    return new Map(
      this.dirs.map((d) => {
        const lines = readMetrics(d).sort((a, b) => a.epoch - b.epoch);
        return [basename(d), lines.map((l) => l[metric] ?? NaN)];
      }),
    );
  }

  async report(): Promise<void> {
    /* the point's own metrics.jsonl already holds it */
  }
}
