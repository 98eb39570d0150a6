import { defineCommand } from './command.js';
import { EXIT, cwdOf } from './io.js';
import { displayPath, table } from './report.js';
import { JSON_FLAG, runFoldersUnder } from './flags.js';
import { describeSource } from './sync.js';
import { folderStatus, type FolderStatus } from '../track/sync-folders.js';

/** What has not reached the server, e.g. "3 events unsent (2 epoch, 1 run_ended)". */
function describeTracking(s: FolderStatus): string {
  if (s.damaged > 0) return `events.jsonl has ${s.damaged} damaged line${s.damaged === 1 ? '' : 's'}: exp sync --rebuild-events`;
  if (s.error) return `unknown: ${s.error}`;
  if (s.tracking === 'off') return 'tracking off';
  const n = s.tracking.unsent.length;
  if (n === 0) return s.tracking.runId ? 'synced' : 'nothing recorded yet';
  return `${n} event${n === 1 ? '' : 's'} unsent (${Object.entries(countTypes(s.tracking.unsent))
    .map(([t, c]) => `${c} ${t}`)
    .join(', ')})`;
}

function countTypes(events: readonly { type: string }[]): Record<string, number> {
  const counts: Record<string, number> = {};
  for (const e of events) counts[e.type] = (counts[e.type] ?? 0) + 1;
  return counts;
}

export const statusCommand = defineCommand({
  name: 'status',
  summary: "Show each run folder's status, epochs done, and what has not been sent to MLflow yet.",
  usage: 'status [PATH...] [--json]',
  details: [
    'PATH is a run folder, a sweep folder, an experiment folder or the runs folder (default runs/, or $EXP_RUNS_DIR). Reads only',
    'local files. The server is the one `exp sync` would use: tracking.uri, $MLFLOW_TRACKING_URI, or the one the run was sent to.',
    'A run whose process is gone without recording its end shows as interrupted; `exp run` resumes it.',
  ].join('\n'),
  positionals: { name: 'PATH' },
  flags: { json: JSON_FLAG },
  async run(paths, flags, io) {
    const statuses = runFoldersUnder(paths, io).map((d) => folderStatus(d, io.env));
    // Sweeps submitted with --launcher slurm: each point's task state from scontrol/sacct (undefined for others).
    const slurm = await (
      await import('./slurm.js')
    ).slurmColumn(
      statuses.map((s) => s.dir),
      io.env,
    );
    if (flags.json) {
      io.stdout.write(
        JSON.stringify(
          statuses.map((s) => ({
            dir: s.dir,
            status: s.status,
            epochs_done: s.epochsDone,
            epochs_planned: s.epochsPlanned,
            damaged_event_lines: s.damaged,
            tracking:
              s.tracking === 'off'
                ? 'off'
                : {
                    uri: s.tracking.uri,
                    from: s.tracking.source,
                    experiment: s.tracking.experiment,
                    run_id: s.tracking.runId,
                    synced_seq: s.tracking.synced,
                    unsent: s.tracking.unsent.length,
                    unsent_types: countTypes(s.tracking.unsent),
                  },
            ...(s.error ? { error: s.error } : {}),
            ...(slurm ? { slurm: slurm.get(s.dir) ?? null } : {}),
          })),
          null,
          2,
        ) + '\n',
      );
      return EXIT.ok;
    }
    if (statuses.length === 0) {
      io.stdout.write('No run folders found\n');
      return EXIT.ok;
    }
    const cwd = cwdOf(io);
    const servers = new Map<string, string>();
    for (const s of statuses) if (s.tracking !== 'off') servers.set(s.tracking.uri, describeSource(s.tracking.source));
    for (const [uri, from] of servers) io.stdout.write(`MLflow server ${uri} (from ${from})\n`);
    if (servers.size > 0) io.stdout.write('\n');
    io.stdout.write(
      table(
        ['run', 'status', 'epochs', 'mlflow', ...(slurm ? ['slurm'] : [])],
        statuses.map((s) => [
          displayPath(s.dir, cwd),
          s.status,
          `${s.epochsDone}/${s.epochsPlanned ?? '?'}`,
          describeTracking(s),
          ...(slurm ? [slurm.get(s.dir) ?? 'not submitted'] : []),
        ]),
      ),
    );
    return EXIT.ok;
  },
});
