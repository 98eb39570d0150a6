import { rmSync } from 'node:fs';
import { randomUUID } from 'node:crypto';
import { defineCommand } from './command.js';
import { EXIT, cwdOf, type Io } from './io.js';
import { displayPath } from './report.js';
import { runFoldersUnder, runsDirOf } from './flags.js';
import { syncFolders } from '../track/sync-folders.js';
import { rebuildEvents } from '../track/rebuild.js';
import { clientsFromEnv, FINAL_SYNC_TUNING } from '../mlflow/client.js';
import type { SyncResult } from '../track/sync.js';
import type { Tracking } from '../track/target.js';
import { runPath } from '../store/layout.js';
import { readPoint, writePoint } from '../store/run.js';

/** Says where the server came from, once per sync: the config, the environment, or what the run recorded. */
export const describeSource = (s: Tracking['source'] | undefined): string =>
  s === 'config'
    ? 'tracking.uri of the run'
    : s === 'environment'
      ? '$MLFLOW_TRACKING_URI'
      : s === 'recorded'
        ? 'the server the run was sent to before (no tracking.uri, no $MLFLOW_TRACKING_URI)'
        : '';

/** One line of `exp sync`'s report, after the folder's path. */
export function describeSync(r: SyncResult): string {
  const events = (n: number): string => `${n} event${n === 1 ? '' : 's'}`;
  switch (r.outcome) {
    case 'sent':
      return `sent ${events(r.sent)}`;
    case 'up-to-date':
      return 'up to date';
    case 'off':
      return 'tracking off (no tracking.uri in config.yaml, no MLFLOW_TRACKING_URI, and never sent)';
    case 'pending':
      return `sent ${events(r.sent)}; ${events(r.pending)} left for the next sync`;
    case 'busy':
      return `busy: another sync is sending this run (${events(r.pending)} pending)`;
    case 'failed':
      return `failed: ${r.error ?? 'unknown error'} (${[r.sent ? `sent ${events(r.sent)}` : '', `${events(r.pending)} pending`].filter(Boolean).join(', ')})${r.code ? ` [${r.code}]` : ''}${r.fix ? `\n    fix: ${r.fix}` : ''}`;
  }
}

export const syncCommand = defineCommand({
  name: 'sync',
  summary: 'Send what run folders recorded (events.jsonl) to their MLflow server; only what is new.',
  usage: 'sync [PATH...] [--rebuild-events] [--new-identity]',
  details: [
    'PATH is a run folder, a sweep folder, an experiment folder or the runs folder (default runs/, or $EXP_RUNS_DIR).',
    "The server is tracking.uri from each run's config.yaml, else $MLFLOW_TRACKING_URI, else the server the run was sent",
    "to before; the experiment is tracking.experiment, else $MLFLOW_EXPERIMENT_NAME, else the experiment's name. Each sweep",
    'is a parent run, each run folder a child run. Syncing again sends nothing twice, so run it after an outage or for runs',
    'trained offline. Exit status: 0 when every run is synced (or has tracking off), 1 when any failed.',
  ].join('\n'),
  positionals: { name: 'PATH' },
  flags: {
    'rebuild-events': { type: 'boolean', description: "First rebuild each run's events.jsonl from its other files (for a log damaged on disk)." },
    'new-identity': {
      type: 'boolean',
      description: 'Give each run folder a new identity first, so it becomes an MLflow run of its own (for a copied folder).',
    },
  },
  async run(paths, flags, io) {
    const dirs = runFoldersUnder(paths, io);
    const cwd = cwdOf(io);
    if (dirs.length === 0) {
      io.stdout.write(`No run folders under ${paths.join(', ') || displayPath(runsDirOf(undefined, io), cwd)}\n`);
      return EXIT.ok;
    }
    for (const dir of dirs) {
      if (flags['new-identity']) {
        writePoint(dir, { ...readPoint(dir), uid: randomUUID() });
        rmSync(runPath(dir, 'sink'), { force: true });
        io.stdout.write(`${displayPath(dir, cwd)}: new identity; its next sync makes a new MLflow run\n`);
      }
      if (flags['rebuild-events']) io.stdout.write(`${displayPath(dir, cwd)}: rebuilt events.jsonl (${rebuildEvents(dir)} events) from its other files\n`);
    }
    const width = Math.max(...dirs.map((d) => displayPath(d, cwd).length));
    const sources = new Set<string>();
    const { runs, sweeps } = await syncFolders(dirs, clientsFromEnv(io.env), {
      env: io.env,
      onRun: (r) => {
        if (r.uri && !sources.has(`${r.uri}|${r.source}`)) {
          sources.add(`${r.uri}|${r.source}`);
          io.stdout.write(`MLflow server ${r.uri} (from ${describeSource(r.source)})\n`);
        }
        io.stdout.write(`${displayPath(r.dir, cwd).padEnd(width)}  ${describeSync(r)}\n`);
        for (const w of r.warnings) io.stdout.write(`  warning: ${w}\n`);
      },
    });
    for (const s of sweeps.filter((x) => x.error)) io.stdout.write(`${displayPath(s.dir, cwd)}  failed to set the sweep's parent run status: ${s.error}\n`);
    const failed = runs.filter((r) => r.outcome === 'failed').length + sweeps.filter((s) => s.error).length;
    // Promise a fix only when one was shown.
    const fixed = runs.some((r) => r.outcome === 'failed' && r.fix);
    if (failed > 0)
      io.stderr.write(
        `exp sync: ${failed} failed; nothing is lost: ${fixed ? 'apply the fix shown, then run exp sync again' : "run 'exp sync' again when the server is reachable"}\n`,
      );
    return failed > 0 ? EXIT.failed : EXIT.ok;
  },
});

/** How long `exp run` waits for its final sync before leaving the rest to `exp sync`. */
export const FINAL_SYNC_MS = 20_000;

/**
 * `exp run`'s sync once its runs end: sends the sweep to MLflow, bounded in time, and prints
 * one line, or a warning per run not sent. Never fails the run: `exp sync` retries.
 */
export async function syncAfterRun(dirs: readonly string[], sweepDir: string, io: Io): Promise<void> {
  const cwd = cwdOf(io);
  try {
    const { runs, sweeps } = await syncFolders(dirs, clientsFromEnv(io.env, FINAL_SYNC_TUNING), {
      env: io.env,
      deadline: Date.now() + FINAL_SYNC_MS,
    });
    const on = runs.filter((r) => r.outcome !== 'off');
    if (on.length === 0) return;
    const bad = on.filter((r) => r.outcome === 'failed' || r.outcome === 'busy' || r.outcome === 'pending');
    for (const r of bad) io.stderr.write(`warning: MLflow: ${displayPath(r.dir, cwd)} ${describeSync(r)}\n`);
    for (const s of sweeps.filter((x) => x.error)) io.stderr.write(`warning: MLflow: could not set the sweep's parent run status: ${s.error}\n`);
    const sweep = sweeps[0];
    const where = `${on[0]!.uri} (experiment ${on[0]!.experiment}${sweep ? `, parent run ${sweep.parentRunId}` : ''})`;
    if (bad.length > 0 || sweeps.some((s) => s.error))
      io.stderr.write(
        `warning: MLflow: not everything reached ${where}; nothing is lost: 'exp status ${displayPath(sweepDir, cwd)}' shows what is pending, 'exp sync ${displayPath(sweepDir, cwd)}' sends it\n`,
      );
    else io.stdout.write(`MLflow: ${on.length} run${on.length === 1 ? '' : 's'} synced to ${where}\n`);
  } catch (e) {
    // syncFolders does not throw; this only guards the run's exit status
    io.stderr.write(`warning: MLflow sync failed: ${e instanceof Error ? e.message : String(e)}; 'exp sync ${displayPath(sweepDir, cwd)}' will retry\n`);
  }
}
