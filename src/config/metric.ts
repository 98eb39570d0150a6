/**
 * Which metric, which direction: the one place that decides it. A metric whose name ends in
 * `loss` is minimised, any other (F-beta, its best_/final_ forms, best_epoch) maximised, unless
 * a config says `min` or `max`. The trainer's checkpoint.monitor, median stopping and every
 * ranking of a sweep's points (exp compare, exp runs --sort, exp ensemble --top, the MLflow
 * parent's best child, and adaptive sweeps) resolve their direction here.
 */
import type { ResolvedExperiment } from './types.gen.js';

export type Mode = 'min' | 'max';

/** A ranking: the metric (as query/runs' metricOf names it) and its direction. */
export interface Ranking {
  metric: string;
  mode: Mode;
}

/** The direction of `metric`; `mode` 'auto' (or none) infers it from the name. */
export const metricMode = (metric: string, mode: 'auto' | Mode | undefined = 'auto'): Mode =>
  mode === 'min' || mode === 'max' ? mode : metric.endsWith('loss') ? 'min' : 'max';

type SweepMetric = NonNullable<ResolvedExperiment['sweep']>['metric'];

/** The metric a sweep is ranked by when it declares none (and for sweep folders older than sweep.metric): the README's final_val_fbeta. */
export const DEFAULT_RANK_METRIC = 'final_val_fbeta';

/** A sweep's ranking: sweep.metric resolved (name and mode both optional). */
export function rankingOf(metric: Partial<NonNullable<SweepMetric>> | null | undefined): Ranking {
  const name = metric?.name ?? DEFAULT_RANK_METRIC;
  return { metric: name, mode: metricMode(name, metric?.mode) };
}

/** A ranking given on the command line (--sort METRIC): its direction inferred from the name. */
export const rankingBy = (metric: string): Ranking => ({ metric, mode: metricMode(metric) });

/** How every ranking says what it is ranked by: "ranked by final_val_fbeta (max)". */
export const rankedBy = (r: Ranking): string => `ranked by ${r.metric} (${r.mode})`;

/** The per-epoch metric behind a ranking metric (final_val_fbeta -> val_fbeta), for "best so far" while points train; undefined when there is none. */
export function epochMetricOf(r: Ranking): string | undefined {
  const m = r.metric.replace(/^(best_|final_)/, '');
  return /^(val_)?(loss|fbeta|micro_fbeta|macro_fbeta)$/.test(m) ? m : undefined;
}
