import { existsSync } from 'node:fs';
import { resolve } from 'node:path';
import type { Command } from './command.js';
import { EXIT, type Io } from './io.js';
import { displayPath } from './report.js';
import { DEFAULT_RUNS_DIR, findRunDirs } from '../track/store.js';
import { syncFolders } from '../track/sync-folders.js';
import { clientsFromEnv, type SyncResult } from '../track/sync.js';

/**
 * The run folders under PATHs (run, sweep, experiment folders or a runs root; default the
 * runs root), or undefined after reporting a PATH that does not exist.
 */
export function runDirsUnder(paths: readonly string[], io: Io, command: string): string[] | undefined {
  const cwd = io.cwd ?? process.cwd();
  const roots = paths.length > 0 ? paths : [io.env.EXP_RUNS_DIR || DEFAULT_RUNS_DIR];
  const missing = paths.filter((p) => !existsSync(resolve(cwd, p)));
  if (missing.length > 0) {
    for (const p of missing) io.stderr.write(`exp ${command}: ${p} does not exist; give a run, sweep or experiment folder, or the runs folder\n`);
    return undefined;
  }
  return [...new Set(roots.flatMap((p) => findRunDirs(resolve(cwd, p))))];
}

/** One line of `exp sync`'s report, after the folder's path. */
export function describeSync(r: SyncResult): string {
  const events = (n: number): string => `${n} event${n === 1 ? '' : 's'}`;
  switch (r.outcome) {
    case 'sent': return `sent ${events(r.sent)}`;
    case 'up-to-date': return 'up to date';
    case 'off': return 'tracking off (no tracking.uri in config.yaml and no MLFLOW_TRACKING_URI)';
    case 'pending': return `sent ${events(r.sent)}; ${events(r.pending)} left for the next sync`;
    case 'busy': return `busy: another sync is sending this run (${events(r.pending)} pending)`;
    case 'failed': return `failed: ${r.error ?? 'unknown error'} (${[r.sent ? `sent ${events(r.sent)}` : '', `${events(r.pending)} pending`].filter(Boolean).join(', ')})`;
  }
}

export const syncCommand: Command = {
  name: 'sync',
  summary: 'Send what run folders recorded (events.jsonl) to their MLflow server; only what is new.',
  usage: 'sync [PATH...]',
  details: [
    'PATH is a run folder, a sweep folder, an experiment folder or the runs folder (default runs/, or $EXP_RUNS_DIR).',
    'The server is tracking.uri from each run\'s config.yaml, else $MLFLOW_TRACKING_URI; the experiment is tracking.experiment,',
    'else $MLFLOW_EXPERIMENT_NAME, else the experiment\'s name. Each sweep is a parent run, each run folder a child run.',
    'Syncing again sends nothing twice, so run it after an outage or for runs trained offline.',
    'Exit status: 0 when every run is synced (or has tracking off), 1 when any failed.',
  ].join('\n'),
  flags: {},
  async run(paths, _flags, io) {
    const dirs = runDirsUnder(paths, io, 'sync');
    if (!dirs) return EXIT.usage;
    if (dirs.length === 0) { io.stdout.write(`No run folders under ${paths.join(', ') || io.env.EXP_RUNS_DIR || DEFAULT_RUNS_DIR}\n`); return EXIT.ok; }
    const cwd = io.cwd ?? process.cwd();
    const width = Math.max(...dirs.map((d) => displayPath(d, cwd).length));
    const { runs, sweeps } = await syncFolders(dirs, clientsFromEnv(io.env), {
      env: io.env,
      onRun: (r) => {
        io.stdout.write(`${displayPath(r.dir, cwd).padEnd(width)}  ${describeSync(r)}\n`);
        for (const w of r.warnings) io.stdout.write(`  warning: ${w}\n`);
      },
    });
    for (const s of sweeps.filter((x) => x.error)) io.stdout.write(`${displayPath(s.dir, cwd)}  failed to set the sweep's parent run status: ${s.error}\n`);
    const failed = runs.filter((r) => r.outcome === 'failed').length + sweeps.filter((s) => s.error).length;
    if (failed > 0) io.stderr.write(`exp sync: ${failed} failed; nothing is lost: run 'exp sync' again when the server is reachable\n`);
    return failed > 0 ? EXIT.failed : EXIT.ok;
  },
};

/**
 * `exp run`'s live sync once its runs finish: sends the sweep to MLflow and prints one line,
 * or a warning per run that could not be sent. Never fails the run: `exp sync` retries.
 */
export async function syncAfterRun(dirs: readonly string[], sweepDir: string, io: Io): Promise<void> {
  const cwd = io.cwd ?? process.cwd();
  try {
    const { runs, sweeps } = await syncFolders(dirs, clientsFromEnv(io.env), { env: io.env });
    const on = runs.filter((r) => r.outcome !== 'off');
    if (on.length === 0) return;
    const bad = on.filter((r) => r.outcome === 'failed' || r.outcome === 'busy');
    for (const r of bad) io.stderr.write(`warning: MLflow: ${displayPath(r.dir, cwd)} ${describeSync(r)}\n`);
    for (const s of sweeps.filter((x) => x.error)) io.stderr.write(`warning: MLflow: could not set the sweep's parent run status: ${s.error}\n`);
    const sweep = sweeps[0];
    const where = `${on[0]!.uri} (experiment ${on[0]!.experiment}${sweep ? `, parent run ${sweep.parentRunId}` : ''})`;
    if (bad.length > 0 || sweeps.some((s) => s.error)) io.stderr.write(`warning: MLflow: not everything reached ${where}; nothing is lost, 'exp sync ${displayPath(sweepDir, cwd)}' will retry\n`);
    else io.stdout.write(`MLflow: ${on.length} run${on.length === 1 ? '' : 's'} synced to ${where}\n`);
  } catch (e) { // syncFolders does not throw; this only guards the run's exit status
    io.stderr.write(`warning: MLflow sync failed: ${e instanceof Error ? e.message : String(e)}; 'exp sync ${displayPath(sweepDir, cwd)}' will retry\n`);
  }
}
