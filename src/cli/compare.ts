import { basename } from 'node:path';
import { defineCommand } from './command.js';
import { EXIT, cwdOf } from './io.js';
import { displayPath, table } from './report.js';
import { checkSortMetric } from './runs.js';
import { compareColumns } from '../query/cells.js';
import { RUNS_DIR_FLAG, runsDirOf } from './flags.js';
import { sweepTable } from '../query/runs.js';
import { rankedBy } from '../config/metric.js';
import { findSweepDir } from '../store/find.js';

export { compareColumns };

export const compareCommand = defineCommand({
  name: 'compare',
  summary: "Compare the points of one sweep: the values that vary, and each point's best epoch, best first.",
  usage: 'compare SWEEP [--sort METRIC] [--json]',
  details: [
    'SWEEP is a sweep folder, or EXPERIMENT/SWEEP (or SWEEP) under the runs folder (default runs/, or $EXP_RUNS_DIR).',
    "Rows are ranked by the sweep's metric (sweep.metric: default final_val_fbeta, highest first), or by --sort METRIC (losses",
    "ascending, the rest descending); points without it come last, in sweep order. A metric is the point's result: its best checkpoint",
    'evaluated again at the end (final_<m> in MLflow, so `mlflow.search_runs(order_by=["metrics.final_val_fbeta DESC"])`',
    "ranks the same way), else its best epoch's value. baseline is the val_fbeta of always predicting the most frequent tags.",
  ].join('\n'),
  positionals: { name: 'SWEEP', min: 1, max: 1 },
  flags: {
    sort: { type: 'string', arg: 'METRIC', description: "Rank by this metric instead of the sweep's (sweep.metric)." },
    'runs-dir': RUNS_DIR_FLAG,
    json: {
      type: 'boolean',
      description: 'Print the ranked rows as JSON: [{dir, name, key, params, status, epochs_done, best_epoch, best, final, baseline}].',
    },
  },
  async run(args, flags, io) {
    const cwd = cwdOf(io);
    const dir = findSweepDir(args[0]!, cwd, runsDirOf(flags['runs-dir'], io));
    const sort = flags.sort;
    const t = sweepTable(dir, sort);
    if (sort !== undefined) checkSortMetric(t.rows, sort);
    if (flags.json) {
      io.stdout.write(
        JSON.stringify(
          t.rows.map((r) => ({
            dir: r.dir,
            name: r.name,
            key: r.key,
            params: r.params,
            status: r.status,
            epochs_done: r.epochs_done,
            best_epoch: r.best?.epoch ?? null,
            best: r.best?.metrics ?? null,
            final: r.final,
            baseline: r.baseline,
            reason: r.reason,
          })),
          null,
          2,
        ) + '\n',
      );
      return EXIT.ok;
    }
    if (t.rows.length === 0) {
      io.stdout.write(`No points in ${displayPath(dir, cwd)}\n`);
      return EXIT.ok;
    }
    const { headers, row } = compareColumns(t);
    const n = t.rows.length;
    io.stdout.write(`${t.experiment} / ${basename(dir)}: ${n} point${n === 1 ? '' : 's'}, ${rankedBy(t)}, best first\n\n`);
    io.stdout.write(table(headers, t.rows.map(row)));
    return EXIT.ok;
  },
});
