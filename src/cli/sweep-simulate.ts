/**
 * `exp sweep simulate SWEEP`: what a scheduler would have cost and found on a finished sweep,
 * by replaying its run folders' recorded curves and epoch times (search/simulate.ts). Reads
 * only local files and never writes; no TensorFlow.
 */
import { basename, resolve } from 'node:path';
import { defineCommand } from './command.js';
import { EXIT, cwdOf } from './io.js';
import { JSON_FLAG, runFoldersUnder } from './flags.js';
import { displayPath, table } from './report.js';
import { StoreError, UsageError } from '../errors.js';
import { readMetrics } from '../store/run.js';
import { readSweepIndex, readSweepRanking } from '../store/sweep.js';
import { runPath, sweepDirOf } from '../store/layout.js';
import { readJson } from '../util/fsx.js';
import { epochMetricOf, metricMode, type Mode } from '../config/metric.js';
import { DEFAULT_ETA } from '../search/asha.js';
import { simulate, type RecordedRun, type SchedulerName, type SimulationResult } from '../search/simulate.js';

const SCHEDULERS = ['asha', 'hyperband', 'median', 'none'] as const;

/** The metric's curve and epoch seconds of one run folder; epochs missing the metric read NaN. */
function recorded(dir: string, metric: string): RecordedRun & { has: boolean } {
  const byEpoch = new Map<number, { v: number; s: number }>();
  for (const l of readMetrics(dir)) {
    if (!Number.isInteger(l.epoch) || l.epoch < 1) continue;
    const v = l[metric];
    byEpoch.set(l.epoch, { v: typeof v === 'number' ? v : NaN, s: typeof l.seconds === 'number' && l.seconds >= 0 ? l.seconds : 0 });
  }
  const values: number[] = [];
  const seconds: number[] = [];
  // Only the epochs 1..n without a gap: a point's curve as it was trained.
  for (let e = 1; byEpoch.has(e); e++) {
    values.push(byEpoch.get(e)!.v);
    seconds.push(byEpoch.get(e)!.s);
  }
  return { run: basename(dir), values, seconds, has: values.some(Number.isFinite) };
}

/** The sweep's run folders in sweep order: index.json's order, else point.json's index, else by name. */
function ordered(dirs: readonly string[]): string[] {
  const indexOf = (d: string): number => {
    const entry = readSweepIndex(sweepDirOf(d))?.points.find((p) => p.dir === basename(d));
    const own = readJson<{ index?: unknown }>(runPath(d, 'point'))?.index;
    return entry?.index ?? (typeof own === 'number' ? own : Number.MAX_SAFE_INTEGER);
  };
  const keyed = dirs.map((d) => ({ d, i: indexOf(d) }));
  return keyed.sort((a, b) => a.i - b.i || (a.d < b.d ? -1 : a.d > b.d ? 1 : 0)).map((k) => k.d);
}

function render(r: SimulationResult, metric: string, skipped: number): string {
  const pct = (a: number, b: number): string => (b > 0 ? `${((100 * a) / b).toFixed(0)}%` : '-');
  const fmt = (v: number | undefined): string => (v === undefined ? '-' : String(Number(v.toPrecision(4))));
  const lines = [
    `scheduler ${r.scheduler} on ${r.workers} worker${r.workers === 1 ? '' : 's'} (simulated from the recorded epochs)`,
    table(
      ['', 'epochs', 'wall time', `best ${metric}`, 'best run'],
      [
        [
          r.scheduler,
          `${r.epochs} (${pct(r.epochs, r.grid_epochs)})`,
          `${r.wall_s.toFixed(0)} s (${pct(r.wall_s, r.grid_wall_s)})`,
          fmt(r.best?.value),
          r.best?.run ?? '-',
        ],
        ['every point to its end', String(r.grid_epochs), `${r.grid_wall_s.toFixed(0)} s`, fmt(r.true_best?.value), r.true_best?.run ?? '-'],
      ],
    ),
  ];
  if (r.pruned.length) lines.push(`${r.pruned.length} pruned:`, ...r.pruned.map((p) => `  ${p.run}: ${p.reason}`));
  if (skipped) lines.push(`${skipped} run folder${skipped === 1 ? '' : 's'} without a recorded ${metric} left out`);
  return lines.join('\n') + '\n';
}

export const sweepSimulateCommand = defineCommand({
  name: 'sweep simulate',
  summary:
    'Replay a finished sweep through a scheduler (asha, hyperband, median, none): the epochs and time it would have cost, the best point it would have found.',
  usage: 'sweep simulate SWEEP [--scheduler S] [--workers N] [--eta E] [--min-epochs M] [--metric M] [--json]',
  details: [
    "SWEEP is a sweep folder (or any folder holding run folders). Each run folder's metrics.jsonl gives its curve of the metric and its",
    'seconds per epoch; N simulated workers take the points in sweep order, and the scheduler judges each point after each epoch as it',
    "would have live. A point's value is its best epoch. Reads only; deterministic.",
  ].join('\n'),
  positionals: { name: 'SWEEP', min: 1, max: 1 },
  flags: {
    scheduler: { type: 'string', arg: 'S', default: 'asha', choices: SCHEDULERS, description: 'The scheduler to replay.' },
    workers: { type: 'int', arg: 'N', default: 1, min: 1, max: 10000, description: 'Simulated workers.' },
    eta: {
      type: 'int',
      arg: 'E',
      min: 2,
      max: 100,
      description: `Reduction factor (default ${DEFAULT_ETA.asha} for asha, ${DEFAULT_ETA.hyperband} for hyperband).`,
    },
    'min-epochs': { type: 'int', arg: 'M', default: 1, min: 1, max: 100000, description: 'First rung (asha, hyperband); grace epochs (median).' },
    brackets: { type: 'int', arg: 'B', min: 1, max: 100, description: 'Hyperband brackets (default floor(log_eta(epochs/min-epochs)) + 1).' },
    metric: { type: 'string', arg: 'M', description: "Per-epoch metric (default: the sweep's sweep.metric as an epoch metric, else val_fbeta)." },
    mode: {
      type: 'string',
      arg: 'MODE',
      choices: ['auto', 'min', 'max'] as const,
      default: 'auto',
      description: 'Whether lower or higher is better; auto: min for a loss.',
    },
    json: JSON_FLAG,
  },
  async run([sweep], flags, io) {
    const root = resolve(cwdOf(io), sweep!);
    const dirs = ordered(runFoldersUnder([sweep!], io));
    if (dirs.length === 0)
      throw new StoreError({
        code: 'NOT_A_SWEEP_FOLDER',
        message: `${root} holds no run folders`,
        file: root,
        fix: 'give a sweep folder, e.g. runs/<experiment>/<sweep>',
      });
    const ranking = readSweepRanking(sweepDirOf(dirs[0]!));
    const metric = flags.metric ?? epochMetricOf(ranking) ?? 'val_fbeta';
    if (!/^[A-Za-z0-9_./-]{1,250}$/.test(metric))
      throw new UsageError({
        code: 'BAD_OPTION_VALUE',
        message: `--metric '${metric.slice(0, 40)}' is not a metric name`,
        fix: 'give a metric of metrics.jsonl, e.g. val_fbeta',
      });
    const mode: Mode =
      flags.metric === undefined && flags.mode === 'auto' && epochMetricOf(ranking) ? ranking.mode : metricMode(metric, flags.mode as 'auto' | Mode);
    const all = dirs.map((d) => recorded(d, metric));
    const runs = all.filter((r) => r.has);
    if (runs.length === 0)
      throw new StoreError({
        code: 'NO_CURVES',
        message: `no run folder under ${displayPath(root, cwdOf(io))} has recorded ${metric} in metrics.jsonl`,
        file: root,
        fix: 'train the sweep first, or pick another --metric (e.g. val_loss)',
        exit: 'failed',
      });
    const scheduler = flags.scheduler as SchedulerName;
    const eta = flags.eta ?? (scheduler === 'hyperband' ? DEFAULT_ETA.hyperband : DEFAULT_ETA.asha);
    const opts = { scheduler, workers: flags.workers, mode, metric, minEpochs: flags['min-epochs'], eta, study: basename(sweepDirOf(dirs[0]!)), minPoints: 3 };
    const result = simulate(runs, { ...opts, ...(flags.brackets ? { brackets: flags.brackets } : {}) });
    if (flags.json)
      io.stdout.write(
        JSON.stringify({ ...result, metric, mode, eta, min_epochs: opts.minEpochs, runs: runs.length, left_out: all.length - runs.length }) + '\n',
      );
    else io.stdout.write(render(result, metric, all.length - runs.length));
    return EXIT.ok;
  },
});
