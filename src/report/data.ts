/**
 * What `exp report` draws, gathered from the sweep folder alone through the store's readers:
 * the sweep table (the rows of `exp compare`), each point's run.json (status, reason, end
 * time), its metrics.jsonl curve of the ranking metric, its summary's per-tag F-beta, and the
 * base values of the swept settings from sweep.yaml. Light: no TensorFlow.js.
 */
import { existsSync } from 'node:fs';
import { parseYaml } from '../config/load.js';
import { epochMetricOf, rankingBy, type Ranking } from '../config/metric.js';
import { metricOf, sweepTable, type RunRow, type SweepTable } from '../query/runs.js';
import { SWEEP_FILES, sweepPath } from '../store/layout.js';
import { readMetrics, readRunRecord, readSummary } from '../store/run.js';
import { readSweepIndex } from '../store/sweep.js';
import { readFileBounded } from '../util/fsx.js';
import { getPath } from '../util/object.js';

export interface CurvePoint {
  epoch: number;
  val?: number;
  train?: number;
}

export interface ReportPoint {
  row: RunRow;
  /** The ranking metric's value (undefined while unknown). */
  value: number | undefined;
  /** run.json's reason: why it was pruned or failed. */
  reason: string | null;
  ended: string | null;
  curve: CurvePoint[];
  /** Per-tag validation F-beta of the point's result (summary.final, else its best epoch). */
  perTag: Record<string, number>;
}

export interface ReportData {
  dir: string;
  experiment: string;
  sweep: string;
  file: string | null;
  created: string | null;
  commit: string | null;
  ranking: Ranking;
  /** The per-epoch metric drawn as curves (val_fbeta for final_val_fbeta), and its train form. */
  curveMetric: string | undefined;
  trainMetric: string | undefined;
  table: SweepTable;
  /** Points in sweep order. */
  points: ReportPoint[];
  /** Points with a result, in finishing order. */
  finished: ReportPoint[];
  /** Of those, the ones that trained to the end: pruned and failed results are partial, so importances and parallel coordinates leave them out (as Optuna keeps COMPLETE trials). */
  complete: ReportPoint[];
  counts: Record<string, number>;
  planned: number;
  inProgress: boolean;
  totalEpochs: number;
  totalSeconds: number;
  /** The base value of each swept setting (the experiment file's own, before the sweep). */
  base: Record<string, unknown>;
}

const MAX_SWEEP_YAML_BYTES = 16 << 20;

/** The experiment as sweep.yaml resolves it, without its sweep: the base the points differ from. */
function baseValues(dir: string, paths: readonly string[]): Record<string, unknown> {
  const file = sweepPath(dir, 'experiment');
  if (!existsSync(file)) return {};
  const parsed = parseYaml(file, readFileBounded(file, MAX_SWEEP_YAML_BYTES, SWEEP_FILES.experiment).toString('utf8'));
  if (parsed.problems.length > 0) return {};
  return Object.fromEntries(paths.map((p) => [p, getPath(parsed.value, p)]).filter(([, v]) => v !== undefined));
}

const trainOf = (m: string | undefined): string | undefined => (m?.startsWith('val_') ? m.slice(4) : undefined);

function pointOf(row: RunRow, ranking: Ranking, curveMetric: string | undefined, trainMetric: string | undefined): ReportPoint {
  const record = readRunRecord(row.dir);
  const summary = readSummary(row.dir);
  const lines = curveMetric ? readMetrics(row.dir) : [];
  const curve = lines
    .map((l) => ({ epoch: l.epoch, val: l[curveMetric!], train: trainMetric ? l[trainMetric] : undefined }))
    .filter((c) => Number.isFinite(c.val) || Number.isFinite(c.train));
  const source = summary?.final ?? row.final ?? row.best?.metrics ?? {};
  const perTag = Object.fromEntries(
    Object.entries(source)
      .filter(([k, v]) => k.startsWith('val_fbeta.') && Number.isFinite(v))
      .map(([k, v]) => [k.slice('val_fbeta.'.length), v]),
  );
  const value = metricOf(row, ranking.metric);
  return { row, value: Number.isFinite(value) ? value : undefined, reason: record?.reason ?? null, ended: record?.ended ?? null, curve, perTag };
}

/** Everything the page shows; `metric` (--metric) overrides the sweep's ranking. */
export function gatherReport(dir: string, metric?: string): ReportData {
  const table = sweepTable(dir, metric);
  const ranking = metric === undefined ? { metric: table.metric, mode: table.mode } : rankingBy(metric);
  const curveMetric = epochMetricOf(ranking);
  const trainMetric = trainOf(curveMetric);
  const points = table.points.map((r) => pointOf(r, ranking, curveMetric, trainMetric));
  const time = (p: ReportPoint): number => Date.parse(p.ended ?? '') || Number.MAX_SAFE_INTEGER;
  const finished = points.filter((p) => p.value !== undefined && p.row.status !== 'running').sort((a, b) => time(a) - time(b) || a.row.index - b.row.index);
  const counts: Record<string, number> = {};
  for (const p of points) counts[p.row.status] = (counts[p.row.status] ?? 0) + 1;
  const index = readSweepIndex(dir);
  const ended = points.filter((p) => ['completed', 'pruned', 'failed'].includes(p.row.status)).length;
  const commit = points.map((p) => readRunRecord(p.row.dir)?.environment?.git.commit).find((c) => typeof c === 'string') ?? null;
  return {
    dir,
    experiment: table.experiment,
    sweep: table.sweep,
    file: index?.file ?? null,
    created: index?.created ?? null,
    commit,
    ranking,
    curveMetric,
    trainMetric,
    table,
    points,
    finished,
    complete: finished.filter((p) => p.row.status === 'completed'),
    counts,
    planned: points.length,
    inProgress: ended < points.length,
    totalEpochs: points.reduce((s, p) => s + p.row.epochs_done, 0),
    totalSeconds: points.reduce((s, p) => s + (p.row.duration_s ?? 0), 0),
    base: baseValues(dir, table.paths),
  };
}

/** The best point: the first row of the ranking, when it has the metric. */
export function bestPoint(d: ReportData): ReportPoint | undefined {
  const first = d.table.rows[0];
  return first && Number.isFinite(metricOf(first, d.ranking.metric)) ? d.points.find((p) => p.row === first) : undefined;
}
