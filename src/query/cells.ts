/**
 * How a point's values read in a table: a value, a metric cell, and the columns of a sweep's
 * table (exp compare, and the sweep table of exp report's page). Below cli/ and report/, which
 * both show them, so the page and the terminal agree.
 */
import { metricOf, type RunRow, type SweepTable } from './runs.js';

export function formatValue(v: unknown): string {
  if (typeof v === 'number') return Number.isInteger(v) ? String(v) : String(Number(v.toPrecision(5)));
  if (typeof v === 'string') return v;
  return JSON.stringify(v);
}

/** A metric cell: the number to 5 significant digits, or empty when there is none. */
export const metricCell = (v: number | null | undefined): string => (v === null || v === undefined ? '' : formatValue(v));

/** The columns of `exp compare` (also the sweep table of `exp report`): the swept values, then status, best epoch and metrics. */
export function compareColumns(t: SweepTable): { headers: string[]; row: (r: RunRow) => string[] } {
  // F-beta with the per-tag thresholds tuned after training, when the runs have them.
  const shown = ['val_loss', 'val_fbeta', ...(t.rows.some((r) => r.final?.val_fbeta_tuned !== undefined) ? ['val_fbeta_tuned'] : [])];
  const first = t.rows[0];
  const extra = [...new Set([...(first ? [first.monitor] : []), t.metric])].filter((m) => !shown.includes(m) && m !== 'baseline' && m !== 'epoch');
  // A pruned point's note is the scheduler's decision with its numbers (ASHA: its rung and cut-off), when a point was pruned.
  const note = t.rows.some((r) => r.status === 'pruned');
  const headers = [...t.paths, 'key', 'status', 'best epoch', ...shown, ...extra, 'baseline', ...(note ? ['note'] : [])];
  const row = (r: RunRow): string[] => [
    ...t.paths.map((p) => (p in r.params ? formatValue(r.params[p]) : '')),
    r.key ?? '',
    r.status,
    r.best ? String(r.best.epoch) : '',
    ...[...shown, ...extra].map((m) => metricCell(metricOf(r, m))),
    metricCell(r.baseline),
    ...(note ? [r.status === 'pruned' ? (r.reason ?? '') : ''] : []),
  ];
  return { headers, row };
}
