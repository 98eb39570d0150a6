import { existsSync } from 'node:fs';
import { resolve } from 'node:path';
import { defineCommand } from './command.js';
import { EXIT, cwdOf } from './io.js';
import { displayPath, table } from './report.js';
import { JSON_FLAG, runsDirOf } from './flags.js';
import { UsageError } from '../errors.js';
import { listRuns, metricOf, paramOf, sortRows, type RunRow } from '../query/runs.js';
import { rankedBy, rankingBy } from '../config/metric.js';
import { matches, parseFilter } from '../query/filter.js';
import { chooseColumns, type Column } from './runs-columns.js';

export { formatDuration, metricCell } from './runs-columns.js';

/** The metric named by --sort, checked against what the rows have. */
export function checkSortMetric(rows: readonly RunRow[], sort: string): void {
  if (rows.length === 0 || rows.some((r) => metricOf(r, sort) !== undefined)) return;
  const known = [...new Set(rows.flatMap((r) => [...Object.keys(r.best?.metrics ?? {}), ...Object.keys(r.final ?? {}).map((k) => `final_${k}`)]))];
  throw new UsageError({
    code: 'BAD_OPTION_VALUE',
    message: `no run has a metric '${sort}'${known.length ? `; known: ${[...known.filter((k) => !k.includes('.')).slice(0, 20), 'baseline', 'best_epoch'].join(', ')}` : ' (no run has finished an epoch yet)'}`,
  });
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
    '--columns picks the columns, in its order: the headers (name, status, epochs, best_epoch, val_fbeta, duration, ...), a metric',
    '(val_micro_fbeta, final_val_fbeta), a setting (training.learning_rate) or MLflow names (params.X, metrics.X, tags.X, attributes.X).',
  ].join('\n'),
  positionals: { name: 'PATH', max: 1 },
  flags: {
    filter: { type: 'string', arg: 'EXPR', description: "Keep runs matching an MLflow-style filter (clauses joined by 'and')." },
    sort: { type: 'string', arg: 'METRIC', description: 'Rank by this metric, best first.' },
    columns: {
      type: 'string',
      arg: 'A,B',
      description: 'Show these columns, in this order: headers, metrics, settings, or params.X, metrics.X, tags.X, attributes.X.',
    },
    json: JSON_FLAG,
  },
  async run(paths, flags, io) {
    const cwd = cwdOf(io);
    const root = paths[0] ? resolve(cwd, paths[0]) : runsDirOf(undefined, io);
    if (paths[0] && !existsSync(root))
      throw new UsageError({
        code: 'PATH_NOT_FOUND',
        message: `${paths[0]} does not exist`,
        fix: 'give the runs folder or an experiment, sweep or run folder',
      });
    const clauses = flags.filter ? parseFilter(flags.filter) : [];
    let rows = listRuns(root).filter((r) => matches(r, clauses, paramOf));
    const chosen = chooseColumns(flags.columns, rows);
    // Runs of sweeps submitted with --launcher slurm get their task's state from Slurm (the standard table only).
    const slurm =
      flags.columns === undefined
        ? await (
            await import('./slurm.js')
          ).slurmColumn(
            rows.map((r) => r.dir),
            io.env,
          )
        : undefined;
    const columns: readonly Column[] = slurm
      ? [...chosen, { header: 'slurm', value: (r: RunRow) => slurm.get(r.dir) ?? null, cell: (r: RunRow) => slurm.get(r.dir) ?? '' }]
      : chosen;
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
            ...(flags.columns !== undefined ? { columns: Object.fromEntries(columns.map((c) => [c.header, c.value(r) ?? null])) } : {}),
            ...(slurm ? { slurm: slurm.get(r.dir) ?? null } : {}),
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
        columns.map((c) => c.header),
        rows.map((r) => columns.map((c) => c.cell(r))),
      ),
    );
    for (const r of rows.filter((x) => x.error)) io.stderr.write(`warning: ${displayPath(r.dir, cwd)}: ${r.error}\n`);
    return EXIT.ok;
  },
});
