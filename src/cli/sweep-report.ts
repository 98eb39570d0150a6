import { existsSync, statSync } from 'node:fs';
import { resolve } from 'node:path';
import { defineCommand } from './command.js';
import { EXIT, cwdOf } from './io.js';
import { displayPath } from './report.js';
import { checkSortMetric } from './runs.js';
import { RUNS_DIR_FLAG, runsDirOf } from './flags.js';
import { findSweepDir } from '../store/find.js';
import { StoreError, UsageError } from '../errors.js';
import { readFileBounded, writeFileAtomic } from '../util/fsx.js';
import { gatherReport } from '../report/data.js';
import { GENERATOR, reportHtml, reportPanels } from '../report/html.js';

/** --out replaces only a report exp wrote before (its generator tag is in the first kilobyte), never a user's file. */
function checkReplaceable(out: string): void {
  if (!existsSync(out) || !statSync(out).isFile()) return;
  if (
    statSync(out).size > 0 &&
    readFileBounded(out, 64 << 20, 'the --out file')
      .subarray(0, 1024)
      .toString('utf8')
      .includes(GENERATOR)
  )
    return;
  throw new UsageError({
    code: 'BAD_OPTION_VALUE',
    message: `--out ${out} exists and is not a report exp wrote`,
    fix: 'give a new file name, or remove that file first',
  });
}

/** The PNG panels, loaded only when asked (sharp is a native module). A --png path that is a file is refused. */
async function writePngs(data: ReturnType<typeof gatherReport>, dir: string): Promise<string[]> {
  if (existsSync(dir) && !statSync(dir).isDirectory())
    throw new UsageError({
      code: 'BAD_OPTION_VALUE',
      message: `--png ${dir} is not a folder`,
      fix: 'give a folder for the PNG files (it is created if missing)',
    });
  const { writePanelPngs } = await import('../report/png.js');
  return writePanelPngs(reportPanels(data), dir);
}

export const reportCommand = defineCommand({
  name: 'report',
  summary: 'Draw one sweep as a self-contained HTML page: history, learning curves, parallel coordinates, importances, per-tag results, the table.',
  usage: 'report SWEEP [--out FILE.html] [--metric METRIC] [--png DIR]',
  details: [
    'SWEEP is a sweep folder, or EXPERIMENT/SWEEP (or SWEEP) under the runs folder, as for exp compare.',
    "The page opens offline (inline SVG, no network): the sweep and its best point, each point's result in finishing order with the",
    'best so far, every learning curve of the ranking metric (at most 200 drawn: the best and a sample), parallel coordinates, fANOVA',
    "parameter importances (as Optuna's default evaluator) with the top setting's marginal effect, per-tag F-beta of the top points,",
    "and the sweep table. Ranked by the sweep's metric (sweep.metric), or --metric. A sweep still running is drawn as far as it is known.",
  ].join('\n'),
  positionals: { name: 'SWEEP', min: 1, max: 1 },
  flags: {
    out: { type: 'string', arg: 'FILE', description: 'Where to write the page (default report.html in the sweep folder).' },
    metric: { type: 'string', arg: 'METRIC', description: "Rank and draw by this metric instead of the sweep's (sweep.metric)." },
    png: { type: 'string', arg: 'DIR', description: 'Also write each chart panel as DIR/<panel>.png (history, curves, parallel, importance, tags).' },
    'runs-dir': RUNS_DIR_FLAG,
  },
  async run(args, flags, io) {
    const cwd = cwdOf(io);
    const dir = findSweepDir(args[0]!, cwd, runsDirOf(flags['runs-dir'], io));
    const data = gatherReport(dir, flags.metric);
    if (data.points.length === 0)
      throw new StoreError({
        code: 'NOT_A_SWEEP_FOLDER',
        message: `${dir} holds no sweep points`,
        file: dir,
        fix: 'give a sweep folder written by exp run (runs/EXPERIMENT/SWEEP)',
      });
    if (flags.metric !== undefined) checkSortMetric(data.table.rows, flags.metric);
    const out = resolve(cwd, flags.out ?? `${dir}/report.html`);
    checkReplaceable(out);
    const html = reportHtml(data);
    writeFileAtomic(out, html);
    const pngs = flags.png === undefined ? [] : await writePngs(data, resolve(cwd, flags.png));
    for (const f of pngs) io.stdout.write(`Wrote ${displayPath(f, cwd)}\n`);
    const known = data.finished.length;
    io.stdout.write(
      `Wrote ${displayPath(out, cwd)} (${Math.round(html.length / 1024)} KB): ${known} of ${data.planned} points with ${data.ranking.metric}${data.inProgress ? ' (sweep in progress)' : ''}\n`,
    );
    return EXIT.ok;
  },
});
