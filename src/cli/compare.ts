import { existsSync, readdirSync, statSync } from 'node:fs';
import { basename, dirname, join, resolve } from 'node:path';
import type { Command } from './command.js';
import { EXIT, UsageError } from './io.js';
import { displayPath, formatValue, table } from './report.js';
import { metricCell } from './runs.js';
import { DEFAULT_RUNS_DIR } from '../track/store.js';
import { metricOf, sweepTable, type RunRow } from '../track/query.js';

const isDir = (p: string): boolean => existsSync(p) && statSync(p).isDirectory();

/**
 * The sweep folder SWEEP names: a folder (a run folder means its sweep), else
 * <runs>/<experiment>/<sweep>, else a sweep name found under exactly one experiment.
 */
export function findSweepDir(spec: string, cwd: string, runsDir: string): string {
  const direct = resolve(cwd, spec);
  if (isDir(direct)) return existsSync(join(direct, 'config.yaml')) ? dirname(direct) : direct;
  const runs = resolve(cwd, runsDir);
  if (isDir(join(runs, spec))) return join(runs, spec);
  const experiments = isDir(runs) ? readdirSync(runs).filter((e) => !e.startsWith('.') && isDir(join(runs, e))) : [];
  const matches = experiments.filter((e) => isDir(join(runs, e, spec)));
  if (matches.length === 1) return join(runs, matches[0]!, spec);
  const known = experiments.flatMap((e) => readdirSync(join(runs, e)).filter((s) => isDir(join(runs, e, s))).map((s) => `${e}/${s}`));
  const hint = matches.length > 1 ? `it is in ${matches.length} experiments (${matches.join(', ')}); give EXPERIMENT/${spec}`
    : known.length > 0 ? `sweeps under ${runsDir}: ${known.slice(0, 10).join(', ')}${known.length > 10 ? ', ...' : ''}` : `${runsDir} holds no sweeps`;
  throw new UsageError(`no sweep folder '${spec}' (looked for it as a folder and under ${runsDir}); ${hint}`);
}

export const compareCommand: Command = {
  name: 'compare',
  summary: 'Compare the points of one sweep: the values that vary, and each point\'s best epoch, best first.',
  usage: 'compare SWEEP [--sort METRIC] [--json]',
  details: [
    'SWEEP is a sweep folder, or EXPERIMENT/SWEEP (or SWEEP) under the runs folder (default runs/, or $EXP_RUNS_DIR).',
    'Rows are ranked by the monitored metric (checkpoint.monitor, in its direction), or by --sort METRIC: a metric of the',
    'best epoch (val_loss, val_fbeta, loss, fbeta; losses ascending, the rest descending), or baseline. Points without it come last.',
    'baseline is the val_fbeta of always predicting the most frequent tags, which a model must beat.',
  ].join('\n'),
  flags: {
    sort: { type: 'string', arg: 'METRIC', description: 'Rank by this metric of the best epoch instead of the monitored one.' },
    'runs-dir': { type: 'string', arg: 'DIR', description: `Run store folder (default ${DEFAULT_RUNS_DIR}, or $EXP_RUNS_DIR).` },
    json: { type: 'boolean', description: 'Print the ranked rows as JSON: [{dir, name, key, params, status, epochs_done, best_epoch, best, final, baseline}].' },
  },
  async run(args, flags, io) {
    if (args.length !== 1) { io.stderr.write('exp compare: give exactly one SWEEP\n'); return EXIT.usage; }
    const cwd = io.cwd ?? process.cwd();
    const dir = findSweepDir(args[0]!, cwd, (flags['runs-dir'] as string | undefined) ?? (io.env.EXP_RUNS_DIR || DEFAULT_RUNS_DIR));
    const sort = flags.sort as string | undefined;
    const t = sweepTable(dir, sort);
    if (sort !== undefined && t.rows.length > 0 && t.rows.every((r) => metricOf(r, sort) === undefined)) {
      const known = [...new Set(t.rows.flatMap((r) => Object.keys(r.best?.metrics ?? {})))];
      throw new UsageError(`no point has a metric '${sort}'${known.length ? `; known: ${[...known, 'baseline'].join(', ')}` : ' (no point has finished an epoch yet)'}`);
    }
    if (flags.json) {
      io.stdout.write(JSON.stringify(t.rows.map((r) => ({
        dir: r.dir, name: r.name, key: r.key, params: r.params, status: r.status, epochs_done: r.epochs_done,
        best_epoch: r.best?.epoch ?? null, best: r.best?.metrics ?? null, final: r.final, baseline: r.baseline,
      })), null, 2) + '\n');
      return EXIT.ok;
    }
    if (t.rows.length === 0) { io.stdout.write(`No points in ${displayPath(dir, cwd)}\n`); return EXIT.ok; }
    const shown = ['val_loss', 'val_fbeta'];
    const extra = [...new Set([t.rows[0]!.monitor, t.metric])].filter((m) => !shown.includes(m) && m !== 'baseline' && m !== 'epoch');
    const headers = [...t.paths, 'key', 'status', 'best epoch', ...shown, ...extra, 'baseline'];
    const row = (r: RunRow): string[] => [
      ...t.paths.map((p) => (p in r.params ? formatValue(r.params[p]) : '')), r.key ?? '', r.status, r.best ? String(r.best.epoch) : '',
      ...[...shown, ...extra].map((m) => metricCell(r.best?.metrics[m])), metricCell(r.baseline),
    ];
    const n = t.rows.length;
    io.stdout.write(`${t.experiment} / ${basename(dir)}: ${n} point${n === 1 ? '' : 's'}, best first by ${t.metric} (${t.mode === 'min' ? 'lowest' : 'highest'})\n\n`);
    io.stdout.write(table(headers, t.rows.map(row)));
    return EXIT.ok;
  },
};
