import type { Command } from './command.js';
import { EXIT } from './io.js';
import { displayPath, table } from './report.js';
import { runDirsUnder } from './sync.js';
import { folderStatus, type FolderStatus } from '../track/sync-folders.js';

/** What has not reached the server, e.g. "3 events unsent (2 epoch, 1 run_ended)". */
function describeTracking(s: FolderStatus): string {
  if (s.error) return `unknown: ${s.error}`;
  if (s.tracking === 'off') return 'tracking off';
  const n = s.tracking.unsent.length;
  if (n === 0) return s.tracking.runId ? 'synced' : 'nothing recorded yet';
  return `${n} event${n === 1 ? '' : 's'} unsent (${Object.entries(countTypes(s.tracking.unsent)).map(([t, c]) => `${c} ${t}`).join(', ')})`;
}

function countTypes(events: readonly { type: string }[]): Record<string, number> {
  const counts: Record<string, number> = {};
  for (const e of events) counts[e.type] = (counts[e.type] ?? 0) + 1;
  return counts;
}

export const statusCommand: Command = {
  name: 'status',
  summary: 'Show each run folder\'s status, epochs done, and what has not been sent to MLflow yet.',
  usage: 'status [PATH...] [--json]',
  details: 'PATH is a run folder, a sweep folder, an experiment folder or the runs folder (default runs/, or $EXP_RUNS_DIR). Reads only local files.',
  flags: { json: { type: 'boolean', description: 'Print [{dir, status, epochs_done, epochs_planned, tracking}] as JSON.' } },
  async run(paths, flags, io) {
    const dirs = runDirsUnder(paths, io, 'status');
    if (!dirs) return EXIT.usage;
    const statuses = dirs.map((d) => folderStatus(d, io.env));
    if (flags.json) {
      io.stdout.write(JSON.stringify(statuses.map((s) => ({
        dir: s.dir, status: s.status, epochs_done: s.epochsDone, epochs_planned: s.epochsPlanned,
        tracking: s.tracking === 'off' ? 'off' : {
          uri: s.tracking.uri, experiment: s.tracking.experiment, run_id: s.tracking.runId, synced_seq: s.tracking.synced,
          unsent: s.tracking.unsent.length, unsent_types: countTypes(s.tracking.unsent),
        },
        ...(s.error ? { error: s.error } : {}),
      })), null, 2) + '\n');
      return EXIT.ok;
    }
    if (statuses.length === 0) { io.stdout.write('No run folders found\n'); return EXIT.ok; }
    const cwd = io.cwd ?? process.cwd();
    io.stdout.write(table(['run', 'status', 'epochs', 'mlflow'], statuses.map((s) => [
      displayPath(s.dir, cwd), s.status, `${s.epochsDone}/${s.epochsPlanned ?? '?'}`, describeTracking(s),
    ])));
    return EXIT.ok;
  },
};
