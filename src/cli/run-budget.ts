/**
 * sweep.budget in `exp run`: the launcher's start check, and what is recorded when it stops the
 * sweep (stopped.json in the sweep folder, for the summary and the MLflow parent).
 */
import { basename } from 'node:path';
import type { Plan } from '../sweep/plan.js';
import type { Ranking } from '../config/metric.js';
import { bestOf, budgetCheck } from '../exec/budget.js';
import { clearSweepStop, writeSweepStop, type SweepStop } from '../store/sweep-stop.js';

export interface SweepBudget {
  mayStart: (started: readonly string[]) => string | undefined;
  /** The stop, once the budget stopped the sweep (recorded in the sweep folder). */
  stopped: () => SweepStop | undefined;
}

/** The sweep's budget check for this run, or undefined without sweep.budget. A stop of an earlier run is cleared: this run decides again. */
export function sweepBudget(plan: Plan, sweepDir: string, dirs: () => readonly string[], ranking: Ranking): SweepBudget | undefined {
  clearSweepStop(sweepDir);
  const budget = plan.experiment.sweep?.budget;
  if (!budget) return undefined;
  const check = budgetCheck(budget, dirs, ranking, performance.now());
  let reason: string | undefined;
  let stop: SweepStop | undefined;
  return {
    mayStart: (started) => (reason ??= check(started)),
    stopped: () => {
      if (!reason) return undefined;
      if (stop) return stop;
      const best = bestOf(dirs(), ranking);
      stop = { reason, ...(best ? { best: { run: basename(best.dir), metric: ranking.metric, value: best.value } } : {}), time: new Date().toISOString() };
      writeSweepStop(sweepDir, stop);
      return stop;
    },
  };
}

/** "Stopped by its budget: <reason>; best so far: <run> (final_val_fbeta 0.71)". */
export const stopLine = (s: SweepStop): string =>
  `Stopped by its budget: ${s.reason}; best so far: ${s.best ? `${s.best.run} (${s.best.metric} ${Number(s.best.value.toPrecision(4))})` : 'none (no point ended)'}\n`;
