import { existsSync } from 'node:fs';
import { resolve } from 'node:path';
import { defineCommand } from './command.js';
import { EXIT, cwdOf } from './io.js';
import { displayPath, formatValue, table } from './report.js';
import { JSON_FLAG, runsDirOf } from './flags.js';
import { UsageError } from '../errors.js';
import { listRuns, metricOf, paramOf, sortRows, type RunRow } from '../query/runs.js';
import { rankedBy, rankingBy } from '../config/metric.js';
import { fieldValue, matches, parseField, parseFilter, type Field } from '../query/filter.js';

/** 75 -> "1m15s"; 3725 -> "1h02m"; null -> "". */
export function formatDuration(s: number | null): string {
  if (s === null || !Number.isFinite(s)) return '';
  if (s < 60) return `${s.toFixed(1)}s`;
  const m = Math.floor(s / 60);
  if (m < 60) return `${m}m${String(Math.round(s % 60)).padStart(2, '0')}s`;
  return `${Math.floor(m / 60)}h${String(m % 60).padStart(2, '0')}m`;
}

/** A metric cell: the number to 5 significant digits, or empty when there is none. */
export const metricCell = (v: number | null | undefined): string => (v === null || v === undefined ? '' : formatValue(v));

/** The metric named by --sort, checked against what the rows have. */
export function checkSortMetric(rows: readonly RunRow[], sort: string): void {
  if (rows.length === 0 || rows.some((r) => metricOf(r, sort) !== undefined)) return;
  const known = [...new Set(rows.flatMap((r) => [...Object.keys(r.best?.metrics ?? {}), ...Object.keys(r.final ?? {}).map((k) => `final_${k}`)]))];
  throw new UsageError(
    `no run has a metric '${sort}'${known.length ? `; known: ${[...known.filter((k) => !k.includes('.')).slice(0, 20), 'baseline', 'best_epoch'].join(', ')}` : ' (no run has finished an epoch yet)'}`,
    'BAD_OPTION_VALUE',
  );
}

function cells(r: RunRow, extra: readonly Field[]): string[] {
  const best = r.best;
  return [
    r.experiment,
    r.sweep,
    r.name,
    r.key ?? '',
    r.error ? `${r.status} (unreadable)` : r.status,
    `${r.epochs_done}/${r.epochs_planned ?? '?'}`,
    best ? String(best.epoch) : '',
    best ? `${r.monitor}=${metricCell(metricOf(r, r.monitor))}` : '',
    metricCell(metricOf(r, 'val_loss')),
    metricCell(metricOf(r, 'val_fbeta')),
    r.backend ?? '',
    formatDuration(r.duration_s),
    ...extra.map((f) => {
      const v = fieldValue(r, f, paramOf);
      return v === undefined || v === null ? '' : formatValue(v);
    }),
  ];
}

export const runsCommand = defineCommand({
  name: 'runs',
  summary: 'List runs under a folder: status, epochs, results, backend, duration; filter, sort and pick columns as in MLflow.',
  usage: 'runs [PATH] [--filter EXPR] [--sort METRIC] [--columns A,B] [--json]',
  details: [
    'PATH is the runs folder (default runs/, or $EXP_RUNS_DIR), an experiment, sweep or run folder. Reads only local files.',
    'Runs are listed by experiment, sweep, then sweep order; --sort ranks them by a metric, best first (losses ascending).',
    "A metric is the run's result: its best checkpoint evaluated again at the end (final_<m> in MLflow), else its best",
    "epoch's value; best_<m>, final_<m>, baseline and best_epoch name one explicitly.",
    "--filter takes MLflow's search syntax: metrics.val_fbeta > 0.8 and params.training.optimizer = 'adam' and tags.k = 'v'.",
    '--columns adds columns by the same names: params.training.learning_rate,metrics.val_micro_fbeta,tags.note.',
  ].join('\n'),
  positionals: { name: 'PATH', max: 1 },
  flags: {
    filter: { type: 'string', arg: 'EXPR', description: "Keep runs matching an MLflow-style filter (clauses joined by 'and')." },
    sort: { type: 'string', arg: 'METRIC', description: 'Rank by this metric, best first.' },
    columns: { type: 'string', arg: 'A,B', description: 'Extra columns: params.X, metrics.X, tags.X, attributes.X.' },
    json: JSON_FLAG,
  },
  async run(paths, flags, io) {
    const cwd = cwdOf(io);
    const root = paths[0] ? resolve(cwd, paths[0]) : runsDirOf(undefined, io);
    if (paths[0] && !existsSync(root))
      throw new UsageError(`${paths[0]} does not exist`, 'PATH_NOT_FOUND', 'give the runs folder or an experiment, sweep or run folder');
    const clauses = flags.filter ? parseFilter(flags.filter) : [];
    const extra = (flags.columns ?? '')
      .split(',')
      .map((c) => c.trim())
      .filter(Boolean)
      .map((c) => {
        const f = parseField(c);
        if (!f) throw new UsageError(`--columns: '${c}' is not params.X, metrics.X, tags.X or attributes.X`, 'BAD_OPTION_VALUE');
        return f;
      });
    let rows = listRuns(root).filter((r) => matches(r, clauses, paramOf));
    const ranking = flags.sort ? rankingBy(flags.sort) : undefined;
    if (ranking) {
      checkSortMetric(rows, ranking.metric);
      rows = sortRows(rows, ranking.metric, ranking.mode);
    }
    if (flags.json) {
      io.stdout.write(
        JSON.stringify(
          rows.map((r) => ({
            ...r,
            ...(extra.length ? { columns: Object.fromEntries(extra.map((f) => [`${f.entity}.${f.name}`, fieldValue(r, f, paramOf) ?? null])) } : {}),
          })),
          null,
          2,
        ) + '\n',
      );
      return EXIT.ok;
    }
    if (rows.length === 0) {
      io.stdout.write(`No run folders under ${displayPath(root, cwd)}${clauses.length ? ' match the filter' : ''}\n`);
      return EXIT.ok;
    }
    if (ranking) io.stdout.write(`${rankedBy(ranking)}, best first\n\n`);
    io.stdout.write(
      table(
        [
          'experiment',
          'sweep',
          'run',
          'key',
          'status',
          'epochs',
          'best epoch',
          'monitored',
          'val_loss',
          'val_fbeta',
          'backend',
          'duration',
          ...extra.map((f) => `${f.entity}.${f.name}`),
        ],
        rows.map((r) => cells(r, extra)),
      ),
    );
    for (const r of rows.filter((x) => x.error)) io.stderr.write(`warning: ${displayPath(r.dir, cwd)}: ${r.error}\n`);
    return EXIT.ok;
  },
});
