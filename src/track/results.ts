/**
 * A run's results as metrics of their own, as MLflow users rank runs: `search_runs(order_by=
 * ["metrics.final_val_fbeta DESC"])` reads each run's latest value, so the result must be a
 * metric, not only a step in a history.
 */
import type { Metrics } from '../store/types.js';

/** The headline metrics logged as results: the ones users sort and filter by. */
const HEADLINE = ['loss', 'fbeta', 'val_loss', 'val_fbeta', 'val_micro_fbeta', 'val_macro_fbeta'] as const;

/** `best_<m>` (the best epoch's), `final_<m>` (the reloaded best checkpoint's) and the baseline, as one flat set. */
export function resultMetrics(best: { epoch: number; metrics: Metrics } | null, final: Metrics | null, baseline: number): Metrics {
  const pick = (prefix: string, m: Metrics | null | undefined): Metrics =>
    Object.fromEntries(HEADLINE.filter((k) => m && Number.isFinite(m[k])).map((k) => [`${prefix}${k}`, m![k]!]));
  return {
    ...(best ? { best_epoch: best.epoch } : {}),
    ...pick('best_', best?.metrics),
    ...pick('final_', final),
    ...Object.fromEntries(
      Object.entries(final ?? {})
        .filter(([k]) => k.endsWith('_tuned'))
        .map(([k, v]) => [`final_${k}`, v]),
    ),
    baseline_val_fbeta: baseline,
  };
}
