/**
 * Housekeeping on the tracking side: a removed run folder's MLflow run is marked deleted (the
 * UI can restore it until the server's garbage collection), and so is a removed sweep's parent.
 * Only a run that is this folder's own: not one a copied folder points at (the original's),
 * and, for exp gc --failed, not one the server holds as finished (another worker took it over).
 */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { clientsFromEnv, toRecord, type ClientFor } from '../mlflow/client.js';
import { readAnyRunState, type SweepSinkState } from './sink-state.js';
import { folderId } from './target.js';
import { readJson } from '../util/fsx.js';
import { RUN_FILES, runPath } from '../store/layout.js';
import { readPoint } from '../store/run.js';

const errorText = (e: unknown): string => (e instanceof Error ? (e.message.split('\n')[0] ?? e.message) : String(e));

/** Marks the MLflow run of a run folder (or of a sweep folder's parent) deleted; says what happened. */
export async function forgetTracked(
  dir: string,
  kind: 'run' | 'sweep',
  clients: ClientFor = clientsFromEnv(),
  opts: { onlyIfEnded?: boolean } = {},
): Promise<string> {
  const run = kind === 'run' ? readAnyRunState(dir) : undefined;
  const sweep = kind === 'sweep' ? readJson<SweepSinkState>(join(dir, RUN_FILES.sink)) : undefined;
  const state = run ?? sweep;
  const runId = run?.runId ?? sweep?.parentRunId;
  if (!state || !runId) return 'not in MLflow';
  if (run?.folder && run.folder !== folderId(dir)) return `MLflow run ${runId} kept: this folder is a copy of the one that sent it`;
  try {
    const client = clients(state.trackingUri);
    const server = await client.getRun(runId);
    if (kind === 'run') {
      const uid = existsSync(runPath(dir, 'point')) ? readPoint(dir).uid : undefined;
      const theirs = toRecord(server.data.tags)['exp.uid'];
      if (uid && theirs && theirs !== uid) return `MLflow run ${runId} kept: it belongs to another folder (uid ${theirs})`;
      if (opts.onlyIfEnded && server.info.status !== 'FAILED' && server.info.status !== 'KILLED') {
        return `MLflow run ${runId} kept: the server has it ${server.info.status} (another worker took it over?)`;
      }
    }
    await client.deleteRun(runId);
    return `MLflow run ${runId} marked deleted`;
  } catch (e) {
    return `MLflow run ${runId} NOT deleted (${errorText(e)}); delete it in the UI`;
  }
}
