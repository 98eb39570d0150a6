import { existsSync } from 'node:fs';
import { resolve } from 'node:path';
import type { Command } from './command.js';
import { EXIT } from './io.js';
import { displayPath, formatValue, table } from './report.js';
import { DEFAULT_RUNS_DIR } from '../track/store.js';
import { listRuns, type RunRow } from '../track/query.js';

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

function cells(r: RunRow): string[] {
  const best = r.best;
  return [
    r.experiment, r.sweep, r.name, r.key ?? '', r.error ? `${r.status} (unreadable)` : r.status,
    `${r.epochs_done}/${r.epochs_planned ?? '?'}`,
    best ? String(best.epoch) : '', best ? `${r.monitor}=${metricCell(best.metrics[r.monitor])}` : '',
    metricCell(best?.metrics.val_loss), metricCell(best?.metrics.val_fbeta), r.backend ?? '', formatDuration(r.duration_s),
  ];
}

export const runsCommand: Command = {
  name: 'runs',
  summary: 'List every run under a folder: status, epochs, the best epoch\'s metrics, backend, duration.',
  usage: 'runs [PATH] [--json]',
  details: [
    'PATH is the runs folder (default runs/, or $EXP_RUNS_DIR), an experiment, sweep or run folder. Reads only local files.',
    'The best epoch is the one checkpointing chose (checkpoint.monitor); "monitored" shows that metric and its value.',
    'Sorted by experiment, sweep and run name. --json prints the rows with every metric of the best epoch.',
  ].join('\n'),
  flags: { json: { type: 'boolean', description: 'Print the rows as a JSON array.' } },
  async run(paths, flags, io) {
    if (paths.length > 1) { io.stderr.write('exp runs: give at most one PATH\n'); return EXIT.usage; }
    const cwd = io.cwd ?? process.cwd();
    const given = paths[0] ?? (io.env.EXP_RUNS_DIR || DEFAULT_RUNS_DIR);
    const root = resolve(cwd, given);
    if (paths.length > 0 && !existsSync(root)) {
      io.stderr.write(`exp runs: ${given} does not exist; give the runs folder or an experiment, sweep or run folder\n`);
      return EXIT.usage;
    }
    const rows = listRuns(root);
    if (flags.json) { io.stdout.write(JSON.stringify(rows, null, 2) + '\n'); return EXIT.ok; }
    if (rows.length === 0) { io.stdout.write(`No run folders under ${displayPath(root, cwd)}\n`); return EXIT.ok; }
    io.stdout.write(table(['experiment', 'sweep', 'run', 'key', 'status', 'epochs', 'best epoch', 'monitored', 'val_loss', 'val_fbeta', 'backend', 'duration'], rows.map(cells)));
    for (const r of rows.filter((x) => x.error)) io.stderr.write(`warning: ${displayPath(r.dir, cwd)}: ${r.error}\n`);
    return EXIT.ok;
  },
};
