/**
 * Housekeeping on the tracking side: a removed run folder's MLflow run is marked deleted (the
 * UI can restore it until the server's garbage collection), and so is a removed sweep's parent.
 */
import { clientsFromEnv, type ClientFor } from '../mlflow/client.js';
import { readAnyRunState } from './sink-state.js';
import { readJson } from '../util/fsx.js';
import { RUN_FILES } from '../store/layout.js';
import { join } from 'node:path';
import type { SweepSinkState } from './sink-state.js';

/** Marks the MLflow run of a run folder (or of a sweep folder's parent) deleted; says what happened. */
export async function forgetTracked(dir: string, kind: 'run' | 'sweep', clients: ClientFor = clientsFromEnv()): Promise<string> {
  const state = kind === 'run' ? readAnyRunState(dir) : readJson<SweepSinkState>(join(dir, RUN_FILES.sink));
  const runId = kind === 'run' ? (state as ReturnType<typeof readAnyRunState>)?.runId : (state as SweepSinkState | undefined)?.parentRunId;
  if (!state || !runId) return 'not in MLflow';
  try {
    await clients(state.trackingUri).deleteRun(runId);
    return `MLflow run ${runId} marked deleted`;
  } catch (e) {
    return `MLflow run ${runId} NOT deleted (${e instanceof Error ? e.message.split('\n')[0] : String(e)}); delete it in the UI`;
  }
}
