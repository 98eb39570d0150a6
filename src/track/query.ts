/**
 * Reading run folders back into rows, for `exp runs` and `exp compare`. Local files only:
 * config.yaml, run.json, summary.json and metrics.jsonl, and the sweep's index.json. A run
 * that is still training (no summary.json yet) gets its best epoch from metrics.jsonl, so
 * the tables are right mid-sweep too. No tfjs import: listing runs must stay instant.
 */
import { existsSync, readFileSync } from 'node:fs';
import { hostname } from 'node:os';
import { basename, dirname, join } from 'node:path';
import { findRunDirs, readRunConfig, type SweepIndex } from './store.js';
import { runKey } from '../sweep/key.js';
import { readJson } from '../util/fsx.js';
import type { RunConfig } from '../config/normalise.js';

export type Mode = 'min' | 'max';

/** One run folder, as `exp runs --json` prints it. Metrics are those of the best epoch. */
export interface RunRow {
  dir: string;
  experiment: string;
  sweep: string;
  name: string;
  key: string | null;
  /** run.json's status ('planned' before training); 'interrupted' when it says running but its process is gone. */
  status: string;
  epochs_done: number;
  epochs_planned: number | null;
  /** The metric checkpoints were chosen by (checkpoint.monitor) and its direction. */
  monitor: string;
  mode: Mode;
  best: { epoch: number; metrics: Record<string, number> } | null;
  /** The best checkpoint evaluated again after training (the recipe's final step), when it completed. */
  final: Record<string, number> | null;
  /** val_fbeta of the best constant prediction (predict the top-k tags for every image). */
  baseline: number | null;
  backend: string | null;
  duration_s: number | null;
  /** The sweep values of this point (from index.json), by dotted path. */
  params: Record<string, unknown>;
  error?: string;
}

interface Summary {
  status?: string; backend?: string; epochs_completed?: number; monitor?: string; mode?: Mode;
  best?: { epoch: number; metrics: Record<string, number> } | null; final?: Record<string, number> | null;
  baseline?: { val_fbeta?: number }; duration_s?: number;
}
interface RunJson { key?: string; status?: string; started?: string; ended?: string; backend?: { name?: string } }

/** checkpoint.mode resolved as the trainer does: 'auto' means min for a loss, max otherwise. */
export const modeOf = (monitor: string, mode: string | undefined = 'auto'): Mode =>
  mode === 'min' || mode === 'max' ? mode : monitor.endsWith('loss') ? 'min' : 'max';

/** Whether `a` is strictly better than `b` in `mode`; a missing value is never better. */
const better = (a: number | undefined, b: number | undefined, mode: Mode): boolean =>
  a !== undefined && Number.isFinite(a) && (b === undefined || !Number.isFinite(b) || (mode === 'min' ? a < b : a > b));

/** Every epoch line of metrics.jsonl (a torn last line is skipped). */
export function readMetrics(dir: string): Record<string, number>[] {
  const path = join(dir, 'metrics.jsonl');
  if (!existsSync(path)) return [];
  return readFileSync(path, 'utf8').split('\n').flatMap((l) => {
    try { return l.trim() ? [JSON.parse(l) as Record<string, number>] : []; } catch { return []; }
  });
}

/** The first epoch with the best value of `monitor`, as the trainer's checkpointing picks it. */
export function bestEpoch(lines: readonly Record<string, number>[], monitor: string, mode: Mode): RunRow['best'] {
  let best: Record<string, number> | undefined;
  for (const l of lines) if (better(l[monitor], best?.[monitor], mode)) best = l;
  if (!best) return null;
  const { epoch, lr: _lr, seconds: _s, ...metrics } = best;
  return { epoch: epoch!, metrics };
}

/** True when run.json says running but the folder's lock names a process on this host that is gone. */
function orphaned(dir: string): boolean {
  const path = join(dir, '.lock');
  if (!existsSync(path)) return true; // the trainer holds the lock for as long as it runs
  const lock = readJson<{ pid?: number; host?: string }>(path);
  if (!lock?.pid || lock.host !== hostname()) return false; // being written, or another host's: cannot tell
  try { process.kill(lock.pid, 0); return false; } catch (e) { return (e as NodeJS.ErrnoException).code !== 'EPERM'; }
}

/** Reads one run folder; never throws (an unreadable folder is a row with `error`). */
export function readRun(dir: string, params?: Record<string, unknown>): RunRow {
  const sweepDir = dirname(dir);
  const index = readJson<SweepIndex>(join(sweepDir, 'index.json'));
  const row: RunRow = {
    dir, experiment: index?.experiment ?? basename(dirname(sweepDir)), sweep: index?.sweep ?? basename(sweepDir), name: basename(dir),
    key: null, status: 'planned', epochs_done: 0, epochs_planned: null, monitor: 'val_loss', mode: 'min',
    best: null, final: null, baseline: null, backend: null, duration_s: null,
    params: params ?? index?.points.find((p) => p.dir === basename(dir))?.params ?? {},
  };
  let cfg: RunConfig | undefined;
  try { cfg = readRunConfig(dir); } catch (e) { row.error = `config.yaml: ${(e as Error).message}`; }
  const record = readJson<RunJson>(join(dir, 'run.json'));
  const summary = readJson<Summary>(join(dir, 'summary.json'));
  if (cfg) {
    row.experiment = index?.experiment ?? cfg.name;
    row.epochs_planned = cfg.training?.epochs ?? null;
    row.monitor = cfg.checkpoint?.monitor ?? row.monitor;
    row.mode = modeOf(row.monitor, cfg.checkpoint?.mode);
    try { row.key = runKey(cfg); } catch { /* a config too broken to hash: the row says so through error */ }
  }
  row.key = record?.key ?? row.key;
  row.status = record?.status ?? row.status;
  if (row.status === 'running' && orphaned(dir)) row.status = 'interrupted';
  row.backend = record?.backend?.name ?? summary?.backend ?? null;
  const lines = readMetrics(dir);
  row.epochs_done = Math.max(summary?.epochs_completed ?? 0, ...lines.map((l) => l.epoch ?? 0));
  if (summary?.monitor) { row.monitor = summary.monitor; row.mode = summary.mode ?? modeOf(summary.monitor); }
  // summary.json is written when a run ends; a resumed run's older summary must not win over newer epochs.
  row.best = summary?.best && row.epochs_done <= (summary.epochs_completed ?? 0) ? summary.best : bestEpoch(lines, row.monitor, row.mode);
  row.final = summary?.final ?? null;
  row.baseline = summary?.baseline?.val_fbeta ?? null;
  const started = Date.parse(record?.started ?? '');
  const ended = row.status === 'running' ? Date.now() : Date.parse(record?.ended ?? '');
  row.duration_s = summary?.duration_s ?? (Number.isFinite(started) && Number.isFinite(ended) ? (ended - started) / 1000 : null);
  return row;
}

const order = (a: string, b: string): number => (a < b ? -1 : a > b ? 1 : 0);

/** Every run folder under `root` (a runs, experiment, sweep or run folder), by experiment, sweep, name. */
export function listRuns(root: string): RunRow[] {
  return findRunDirs(root).map((d) => readRun(d))
    .sort((a, b) => order(a.experiment, b.experiment) || order(a.sweep, b.sweep) || order(a.name, b.name));
}

/** The value a row is ranked by: its best epoch's `metric` (or 'baseline', 'epoch'). */
export function metricOf(row: RunRow, metric: string): number | undefined {
  if (metric === 'baseline') return row.baseline ?? undefined;
  if (metric === 'epoch') return row.best?.epoch;
  return row.best?.metrics[metric];
}

/** Sorts best first by `metric` in `mode`; rows without the metric go last, in their order. */
export function sortRows<T extends RunRow>(rows: readonly T[], metric: string, mode: Mode): T[] {
  const sign = mode === 'min' ? 1 : -1;
  return rows.map((r, i) => ({ r, i, v: metricOf(r, metric) })).sort((a, b) => {
    const fa = a.v !== undefined && Number.isFinite(a.v);
    const fb = b.v !== undefined && Number.isFinite(b.v);
    if (fa !== fb) return fa ? -1 : 1;
    return (fa ? sign * (a.v! - b.v!) : 0) || a.i - b.i;
  }).map((x) => x.r);
}

export interface SweepTable {
  dir: string;
  experiment: string;
  sweep: string;
  /** The swept paths, one column each, in the order the points first name them. */
  paths: string[];
  metric: string;
  mode: Mode;
  rows: RunRow[];
}

/**
 * The points of a sweep folder (from index.json; without one, every run folder in it), ranked
 * by `sort` (default: the monitored metric, in its checkpoint direction), best first.
 */
export function sweepTable(sweepDir: string, sort?: string): SweepTable {
  const index = readJson<SweepIndex>(join(sweepDir, 'index.json'));
  const rows = index
    ? index.points.map((p) => readRun(join(sweepDir, p.dir), p.params))
    : findRunDirs(sweepDir, 1).filter((d) => d !== sweepDir).map((d) => readRun(d));
  const paths = [...new Set(rows.flatMap((r) => Object.keys(r.params)))];
  const first = rows.find((r) => r.best) ?? rows[0];
  const metric = sort ?? first?.monitor ?? 'val_loss';
  const mode = sort === undefined || sort === first?.monitor ? first?.mode ?? modeOf(metric) : modeOf(metric);
  return {
    dir: sweepDir, experiment: index?.experiment ?? first?.experiment ?? basename(dirname(sweepDir)), sweep: index?.sweep ?? basename(sweepDir),
    paths, metric, mode, rows: sortRows(rows, metric, mode),
  };
}
