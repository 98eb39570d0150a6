import { dirname } from 'node:path';
import { defineCommand } from './command.js';
import { EXIT, cwdOf, type Io } from './io.js';
import { displayPath, table } from './report.js';
import { RUNS_DIR_FLAG, runsDirOf } from './flags.js';
import { syncAfterRun } from './sync.js';
import { runFolders } from '../exec/local.js';
import { SweepDisplay } from '../exec/display.js';
import { captureEnvironment } from '../store/environment.js';
import { findOriginal, type Original } from '../reproduce/find.js';
import { prepareReproduction } from '../reproduce/prepare.js';
import { checksAfter, checksBefore, compareResults, readReproduction, sameBackend, type Check, type MetricRow } from '../reproduce/compare.js';

const DEFAULT_TOLERANCE = 1e-6;

function printChecks(io: Io, title: string, checks: readonly Check[]): void {
  if (checks.length === 0) return;
  io.stdout.write(`${title}\n`);
  for (const c of checks)
    io.stdout.write(`  ${c.topic.padEnd(12)} ${(c.same === true ? 'same' : c.same === false ? 'DIFFERS' : '?').padEnd(8)} ${c.message}\n`);
}

const num = (v: number | null): string => (v === null ? '-' : Number.isInteger(v) ? String(v) : String(Number(v.toPrecision(8))));
const diff = (r: MetricRow): string =>
  r.difference === null ? '-' : r.difference === 0 ? '0' : `${r.difference > 0 ? '+' : ''}${r.difference.toExponential(2)}`;

/** Whether both runs have the row and it agrees within the relative tolerance (the best epoch exactly). */
const within = (r: MetricRow, tol: number): boolean | null => (r.relative === null ? null : r.metric === 'best epoch' ? r.relative === 0 : r.relative <= tol);

/** The closing verdict: matched, differed, or (across backends) how far apart. */
function verdict(o: Original, rows: readonly MetricRow[], same: boolean, backend: string, tol: number): string {
  const both = rows.filter((r) => r.relative !== null);
  if (!o.results || both.length === 0) return `The original has no results to compare with (status ${o.status ?? 'unknown'}).`;
  if (!same) {
    const worst = both.reduce((a, b) => (b.relative! > a.relative! ? b : a));
    return `The backends differ, so exact agreement is not expected: the largest relative difference is ${worst.relative!.toExponential(2)} (${worst.metric}).`;
  }
  const off = both.filter((r) => !within(r, tol));
  return off.length === 0
    ? `Reproduced: all ${both.length} metrics match the original within ${tol.toExponential()} (relative) on the same backend (${backend}).`
    : `NOT reproduced: ${off.length} of ${both.length} metrics differ by more than ${tol.toExponential()} (relative) on the same backend (${backend}): ${off.map((r) => r.metric).join(', ')}.`;
}

export const reproduceCommand = defineCommand({
  name: 'reproduce',
  summary: 'Train a run again from what it recorded (config and split) and compare the metrics with the original.',
  usage: 'reproduce RUN [--runs-dir DIR] [--tolerance R] [--dry-run]',
  details: [
    'RUN is a run folder, a run key (or a prefix of at least 4 characters) of a folder under the runs folder, or the id of an',
    'MLflow run recorded by exp on the server $MLFLOW_TRACKING_URI names (its config.yaml artifact is downloaded).',
    'The reproduction is a new folder <experiment>/<sweep>-repro-<n>/<run>/ beside the original sweep, with the original',
    'config.yaml and saved split. Differences in code (git commit), data (fingerprint, split), environment (node, packages)',
    "and backend are reported; then both runs' metrics side by side. On the same backend they should agree within",
    `--tolerance (relative, default ${DEFAULT_TOLERANCE.toExponential()}). Exit status: 0 when the reproduction trained, 1 when it failed.`,
  ].join('\n'),
  positionals: { name: 'RUN', min: 1, max: 1 },
  flags: {
    'runs-dir': RUNS_DIR_FLAG,
    tolerance: { type: 'number', arg: 'R', default: DEFAULT_TOLERANCE, min: 0, description: 'Relative tolerance for "match" on the same backend.' },
    'dry-run': { type: 'boolean', description: 'Write the new folder and report code, environment and data differences, but train nothing.' },
  },
  async run(args, flags, io) {
    const tol = flags.tolerance;
    const cwd = cwdOf(io);
    const runsDir = runsDirOf(flags['runs-dir'], io);
    const original: Original = await findOriginal(args[0]!, { cwd, runsDir, env: io.env });
    const shown = original.dir ? displayPath(original.dir, cwd) : original.from;
    io.stdout.write(
      `Reproducing ${shown} (key ${original.key}, status ${original.status ?? 'unknown'}${original.backend ? `, backend ${original.backend.name}` : ''})\n`,
    );
    for (const n of original.notes) io.stderr.write(`warning: ${n}\n`);
    const dir = prepareReproduction(original, runsDir);
    io.stdout.write(`New run folder: ${displayPath(dir, cwd)} (config.yaml${original.splitDir ? ' and split/' : ''} from the original)\n\n`);
    printChecks(io, 'Before training, compared with the original:', checksBefore(original, captureEnvironment()));
    if (flags['dry-run']) {
      io.stdout.write(
        `\nNothing trained (--dry-run). Train it with: exp train ${displayPath(dir, cwd)}\n(the original's results are in its reproduction.json)\n`,
      );
      return EXIT.ok;
    }

    io.stdout.write('\n');
    const [result] = await runFolders([dir], {
      env: io.env,
      childOutput: 'inherit',
      display: new SweepDisplay(io.stdout, { mode: 'ends', metric: original.config.checkpoint.monitor, direction: 'min' }),
    });
    if (result!.status !== 'completed') {
      io.stderr.write(`exp reproduce: the reproduction ${result!.status}; see ${displayPath(dir, cwd)}/train.log\n`);
      return result!.status === 'killed' ? EXIT.interrupted : EXIT.failed;
    }
    await syncAfterRun([dir], dirname(dir), io);

    const repro = readReproduction(dir);
    io.stdout.write('\n');
    printChecks(io, 'After training, compared with the original:', checksAfter(original, repro));
    const rows = compareResults(original.results, repro.results);
    io.stdout.write(`\nMetrics (original: ${shown}; reproduction: ${displayPath(dir, cwd)}):\n`);
    io.stdout.write(
      table(
        ['metric', 'original', 'reproduction', 'difference', 'relative', 'match'],
        rows.map((r) => {
          const ok = within(r, tol);
          return [
            r.metric,
            num(r.original),
            num(r.reproduction),
            diff(r),
            r.relative === null ? '-' : r.relative === 0 ? '0' : r.relative.toExponential(2),
            ok === null ? '-' : ok ? 'yes' : 'no',
          ];
        }),
      ),
    );
    io.stdout.write(`\n${verdict(original, rows, sameBackend(original.backend, repro.backend), repro.backend?.name ?? 'unknown', tol)}\n`);
    return EXIT.ok;
  },
});
