/**
 * sweep.budget: whether the sweep may start another point. Asked by the launcher before each
 * start (exec/local.ts's mayStart); once a kind is spent the answer is its reason, with its
 * numbers, and the sweep starts nothing more: the points already training finish.
 */
import { join } from 'node:path';
import type { ResolvedExperiment } from '../config/types.gen.js';
import type { Ranking } from '../config/metric.js';
import { metricOf, readRun } from '../query/runs.js';
import { readMetrics, readRunRecord } from '../store/run.js';

export type BudgetSettings = NonNullable<NonNullable<NonNullable<ResolvedExperiment['sweep']>['budget']>>;

export interface Best {
  dir: string;
  value: number;
}

/** The best ended point by the ranking, among `dirs`. */
export function bestOf(dirs: readonly string[], ranking: Ranking): Best | undefined {
  let best: Best | undefined;
  for (const dir of dirs) {
    if (readRunRecord(dir)?.status !== 'completed') continue;
    const v = metricOf(readRun({ dir, sweepDir: join(dir, '..'), index: undefined, entry: undefined }), ranking.metric);
    if (v === undefined || !Number.isFinite(v)) continue;
    if (!best || (ranking.mode === 'max' ? v > best.value : v < best.value)) best = { dir, value: v };
  }
  return best;
}

const fmt = (v: number): string => String(Number(v.toPrecision(4)));

/**
 * The budget's check over the sweep's folders now (`dirs`: every point's folder so far) and the
 * points this run has started (`started`); startedAt is when this exp run began (performance.now()).
 */
export function budgetCheck(
  budget: BudgetSettings,
  dirs: () => readonly string[],
  ranking: Ranking,
  startedAt: number,
): (started: readonly string[]) => string | undefined {
  return (started) => {
    const all = dirs();
    if (budget.points !== undefined) {
      const n = new Set([...all.filter((d) => (readRunRecord(d)?.attempts ?? 0) > 0), ...started]).size;
      if (n >= budget.points) return `budget spent: ${n} points started (sweep.budget.points ${budget.points})`;
    }
    if (budget.epochs !== undefined) {
      const n = all.reduce((acc, d) => acc + readMetrics(d).length, 0);
      if (n >= budget.epochs) return `budget spent: ${n} epochs trained in all (sweep.budget.epochs ${budget.epochs})`;
    }
    if (budget.seconds !== undefined) {
      const s = (performance.now() - startedAt) / 1000;
      if (s >= budget.seconds) return `budget spent: ${fmt(s)} s of wall time (sweep.budget.seconds ${budget.seconds})`;
    }
    if (budget.target !== undefined) {
      const best = bestOf(all, ranking);
      const reached = best && (ranking.mode === 'max' ? best.value >= budget.target : best.value <= budget.target);
      if (reached) return `target reached: ${ranking.metric} ${fmt(best.value)} ${ranking.mode === 'max' ? '>=' : '<='} ${budget.target} (sweep.budget.target)`;
    }
    return undefined;
  };
}
