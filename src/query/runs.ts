/**
 * Reading run folders back into rows, for `exp runs` and `exp compare`. Local files only, and
 * only what the store keeps small: point.json, run.json, summary.json, and (for a run still
 * training) metrics.jsonl and config.yaml. No TensorFlow.js: listing runs stays instant, and
 * grows linearly with the number of runs (each sweep's index.json is read once).
 */
import { basename } from 'node:path';
import { listRunFolders, findRunDirs, type FoundRun } from '../store/list.js';
import { checkRunConfig, readMetrics, readPoint, readRunRecord, readSummary } from '../store/run.js';
import { shownStatus } from '../store/status.js';
import { readSweepIndex, readSweepRanking } from '../store/sweep.js';
import { pointDir, sweepDirOf } from '../store/layout.js';
import type { BestEpoch, EpochLine, Metrics, RunStatus } from '../store/types.js';
import { getPath } from '../util/object.js';
import { metricMode, rankingBy, type Mode, type Ranking } from '../config/metric.js';

export type { Mode };

/** One run folder, as `exp runs --json` prints it. */
export interface RunRow {
  dir: string;
  experiment: string;
  sweep: string;
  /** Position in its sweep (index.json), for listing in sweep order. */
  index: number;
  name: string;
  key: string | null;
  uid: string | null;
  /** run.json's status ('planned' before training); 'interrupted' when it says running but no process holds it. */
  status: RunStatus | 'interrupted';
  epochs_done: number;
  epochs_planned: number | null;
  /** The metric checkpoints were chosen by (checkpoint.monitor) and its direction. */
  monitor: string;
  mode: Mode;
  best: BestEpoch | null;
  /** The best checkpoint evaluated again after training (the recipe's final step). */
  final: Metrics | null;
  /** val_fbeta of the best constant prediction (predict the top-k tags for every image). */
  baseline: number | null;
  backend: string | null;
  duration_s: number | null;
  /** The sweep values of this point, by dotted path. */
  params: Record<string, unknown>;
  /** Tags set with `exp tag`. */
  tags: Record<string, string>;
  /** Why it ended as it did (run.json's reason: a pruned point's decision with its numbers); null while it trains or before. */
  reason: string | null;
  error?: string;
}

/** Whether `a` is strictly better than `b` in `mode`; a missing value is never better. */
const better = (a: number | undefined, b: number | undefined, mode: Mode): boolean =>
  a !== undefined && Number.isFinite(a) && (b === undefined || !Number.isFinite(b) || (mode === 'min' ? a < b : a > b));

/** The first epoch with the best value of `monitor`, as the trainer's checkpointing picks it. */
export function bestEpoch(lines: readonly EpochLine[], monitor: string, mode: Mode): BestEpoch | null {
  let best: EpochLine | undefined;
  for (const l of lines) if (better(l[monitor], best?.[monitor], mode)) best = l;
  if (!best) return null;
  const { epoch, lr: _lr, seconds: _s, ...metrics } = best;
  return { epoch, metrics };
}

/** Reads one run folder; never throws (an unreadable folder is a row with `error`). */
export function readRun(found: FoundRun): RunRow {
  const { dir, index, entry } = found;
  const sweepDir = sweepDirOf(dir);
  const row: RunRow = {
    dir,
    experiment: index?.experiment ?? basename(sweepDirOf(sweepDir)),
    sweep: index?.sweep ?? basename(sweepDir),
    index: entry?.index ?? Number.MAX_SAFE_INTEGER,
    name: basename(dir),
    key: entry?.key ?? null,
    uid: null,
    status: 'planned',
    epochs_done: 0,
    epochs_planned: null,
    monitor: 'val_loss',
    mode: 'min',
    best: null,
    final: null,
    baseline: null,
    backend: null,
    duration_s: null,
    params: entry?.params ?? {},
    tags: {},
    reason: null,
  };
  try {
    const point = readPoint(dir);
    Object.assign(row, { key: point.key, uid: point.uid, params: point.params, experiment: point.experiment, sweep: point.sweep, index: point.index });
  } catch (e) {
    row.error = (e as Error).message;
  }
  const record = readRunRecord(dir);
  const summary = readSummary(dir);
  row.key = record?.key ?? row.key;
  row.status = shownStatus(dir, record);
  row.backend = record?.backend?.name ?? summary?.backend ?? null;
  row.tags = record?.tags ?? {};
  row.reason = record?.ended && record.reason ? record.reason : null;
  // A finished run's summary says everything; a run still training needs its config and epochs.
  const current = summary && (record?.status === summary.status || record === undefined);
  if (summary && current) {
    Object.assign(row, {
      epochs_done: summary.epochs_completed,
      epochs_planned: summary.epochs_planned ?? null,
      monitor: summary.monitor,
      mode: summary.mode,
      best: summary.best,
      final: summary.final,
      baseline: summary.baseline?.val_fbeta ?? null,
      duration_s: summary.duration_s,
    });
  }
  if (!current || row.epochs_planned === null) {
    const cfg = checkRunConfig(dir);
    if (cfg.config) {
      row.epochs_planned = cfg.config.training.epochs;
      row.monitor = cfg.config.checkpoint.monitor;
      row.mode = metricMode(row.monitor, cfg.config.checkpoint.mode);
    } else row.error ??= `config.yaml: ${cfg.problems[0]?.message ?? 'invalid'}`;
  }
  if (!current) {
    const lines = readMetrics(dir);
    row.epochs_done = lines.reduce((m, l) => Math.max(m, l.epoch), 0);
    row.best = bestEpoch(lines, row.monitor, row.mode);
    const started = Date.parse(record?.started ?? '');
    const ended = record?.status === 'running' ? Date.now() : Date.parse(record?.ended ?? '');
    row.duration_s = Number.isFinite(started) && Number.isFinite(ended) ? (ended - started) / 1000 : null;
  }
  return row;
}

const order = (a: string, b: string): number => (a < b ? -1 : a > b ? 1 : 0);

/** Every run folder under `root` (a runs, experiment, sweep or run folder): by experiment, sweep, then sweep order. */
export function listRuns(root: string): RunRow[] {
  return listRunFolders(root)
    .map(readRun)
    .sort((a, b) => order(a.experiment, b.experiment) || order(a.sweep, b.sweep) || a.index - b.index || order(a.name, b.name));
}

/**
 * The value a row is ranked by. For a metric of the run (val_fbeta, val_loss, ...) it is the
 * final evaluation of the best checkpoint when the run has one (what MLflow holds as
 * final_<metric>), else the best epoch's value; 'best_<m>' and 'final_<m>' pick one
 * explicitly; 'baseline' and 'epoch' are the constant predictor's score and the best epoch.
 */
export function metricOf(row: Pick<RunRow, 'baseline' | 'best' | 'final'>, metric: string): number | undefined {
  if (metric === 'baseline') return row.baseline ?? undefined;
  if (metric === 'epoch' || metric === 'best_epoch') return row.best?.epoch;
  if (metric.startsWith('final_')) return row.final?.[metric.slice(6)];
  if (metric.startsWith('best_')) return row.best?.metrics[metric.slice(5)];
  return row.final?.[metric] ?? row.best?.metrics[metric];
}

/** Sorts best first by `metric` in `mode`; rows without the metric keep their order, last. */
export function sortRows<T extends RunRow>(rows: readonly T[], metric: string, mode: Mode): T[] {
  const sign = mode === 'min' ? 1 : -1;
  return rows
    .map((r, i) => ({ r, i, v: metricOf(r, metric) }))
    .sort((a, b) => {
      const fa = a.v !== undefined && Number.isFinite(a.v);
      const fb = b.v !== undefined && Number.isFinite(b.v);
      if (fa !== fb) return fa ? -1 : 1;
      return (fa ? sign * (a.v! - b.v!) : 0) || a.i - b.i;
    })
    .map((x) => x.r);
}

export interface SweepTable {
  dir: string;
  experiment: string;
  sweep: string;
  /** The swept paths, one column each, in the order the points first name them. */
  paths: string[];
  /** The ranking: sweep.metric (readSweepRanking), or the --sort metric given. */
  metric: string;
  mode: Mode;
  /** Ranked, best first. */
  rows: RunRow[];
  /** The same rows in the sweep's own order (index.json: grid order, then draw order). */
  points: RunRow[];
}

/**
 * The points of a sweep folder (from index.json; without one, every run folder in it), ranked
 * best first by `sort` (its direction inferred from its name), by default by the sweep's own
 * ranking (sweep.metric, default final_val_fbeta).
 */
export function sweepTable(sweepDir: string, sort?: string): SweepTable {
  const index = readSweepIndex(sweepDir);
  const found: FoundRun[] = index
    ? index.points.map((entry) => ({ dir: pointDir(sweepDir, entry), sweepDir, index, entry }))
    : findRunDirs(sweepDir, 1)
        .filter((d) => d !== sweepDir)
        .map((dir) => ({ dir, sweepDir, index: undefined, entry: undefined }));
  const rows = found.map(readRun).sort((a, b) => a.index - b.index || order(a.name, b.name));
  const paths = [...new Set(rows.flatMap((r) => Object.keys(r.params)))];
  const first = rows.find((r) => r.best) ?? rows[0];
  const { metric, mode }: Ranking = sort === undefined ? readSweepRanking(sweepDir) : rankingBy(sort);
  return {
    dir: sweepDir,
    experiment: index?.experiment ?? first?.experiment ?? basename(sweepDirOf(sweepDir)),
    sweep: index?.sweep ?? basename(sweepDir),
    paths,
    metric,
    mode,
    rows: sortRows(rows, metric, mode),
    points: rows,
  };
}

const configs = new WeakMap<RunRow, Record<string, unknown> | null>();

/**
 * A setting of the run by dotted path: its swept value when it was swept, else the value in
 * its resolved config.yaml (read once per row, only when asked).
 */
export function paramOf(row: RunRow, path: string): unknown {
  if (path in row.params) return row.params[path];
  let cfg = configs.get(row);
  if (cfg === undefined) {
    cfg = (checkRunConfig(row.dir).config as Record<string, unknown> | undefined) ?? null;
    configs.set(row, cfg);
  }
  return cfg === null ? undefined : getPath(cfg, path);
}
