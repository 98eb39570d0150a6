/**
 * Syncing many run folders (after `exp run`, or `exp sync PATH`), then settling each sweep's
 * parent run: FINISHED once every point has ended and is fully sent (FAILED if one failed,
 * KILLED if one was killed), RUNNING while any point is unfinished. Also what `exp status`
 * reads: how far each folder's cursor is behind its log, without asking the server.
 */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { readEvents, type LoggedEvent } from './events.js';
import { readRunState, readSweepState, type SinkTarget, type SweepSinkState } from './sink-state.js';
import { setParentStatus, sweepDirOf } from './sync-runs.js';
import { clientsFromEnv, syncRun, trackingOf, type ClientFor, type SyncOptions, type SyncResult } from './sync.js';
import { MlflowClient } from './mlflow.js';
import { readRunConfig } from './store.js';
import { readJson } from '../util/fsx.js';

export interface SweepSyncResult { dir: string; parentRunId: string; status: SweepSinkState['status']; error?: string }

export interface SyncFoldersResult { runs: SyncResult[]; sweeps: SweepSyncResult[] }

/** Syncs each folder in turn (never throws), then updates the parents of the sweeps they belong to. */
export async function syncFolders(dirs: readonly string[], clients: ClientFor = clientsFromEnv(), opts: SyncOptions & { onRun?: (r: SyncResult) => void } = {}): Promise<SyncFoldersResult> {
  const runs: SyncResult[] = [];
  const unreachable = opts.unreachable ?? new Set<string>(); // one dead server costs one timeout, not one per run
  for (const dir of dirs) {
    const r = await syncRun(dir, clients, { ...opts, unreachable });
    opts.onRun?.(r);
    runs.push(r);
  }
  const sweeps: SweepSyncResult[] = [];
  for (const sweepDir of new Set(runs.filter((r) => r.uri !== undefined && r.experiment !== undefined).map((r) => sweepDirOf(r.dir)))) {
    const one = runs.find((r) => sweepDirOf(r.dir) === sweepDir)!;
    if (unreachable.has(one.uri!)) continue;
    const s = await settleParent(sweepDir, clients(one.uri!), { trackingUri: one.uri!, experiment: one.experiment! });
    if (s) sweeps.push(s);
  }
  return { runs, sweeps };
}

type RunJson = { status?: string; ended?: string };

/** Sets the parent's status from its points' run.json and sink states; never throws. */
async function settleParent(sweepDir: string, client: MlflowClient, target: SinkTarget): Promise<SweepSyncResult | undefined> {
  const state = readSweepState(sweepDir, target);
  if (!state) return undefined; // no point of this sweep reached the server yet
  const points = readJson<{ points?: { dir: string }[] }>(join(sweepDir, 'index.json'))?.points ?? [];
  const dirs = points.map((p) => join(sweepDir, p.dir));
  const records = dirs.map((d) => readJson<RunJson>(join(d, 'run.json')));
  const ended = (r: RunJson | undefined): boolean => r?.status === 'completed' || r?.status === 'failed' || r?.status === 'killed';
  const sent = (d: string): boolean => (readRunState(d, target)?.cursor ?? 0) >= lastSeq(readEvents(d));
  const done = dirs.length > 0 && dirs.every((d, i) => ended(records[i]) && sent(d));
  const status: SweepSinkState['status'] = !done ? 'RUNNING'
    : records.some((r) => r?.status === 'failed') ? 'FAILED' : records.some((r) => r?.status === 'killed') ? 'KILLED' : 'FINISHED';
  const endTime = done ? Math.max(...records.map((r) => Date.parse(r?.ended ?? '') || 0)) || undefined : undefined;
  try {
    await setParentStatus(sweepDir, client, state, status, endTime);
    return { dir: sweepDir, parentRunId: state.parentRunId, status };
  } catch (e) {
    return { dir: sweepDir, parentRunId: state.parentRunId, status: state.status, error: e instanceof Error ? e.message : String(e) };
  }
}

const lastSeq = (events: readonly LoggedEvent[]): number => events.reduce((m, e) => Math.max(m, e.seq), 0);

export interface FolderStatus {
  dir: string;
  /** run.json's status, or 'planned' when the folder has not been trained. */
  status: string;
  epochsDone: number;
  epochsPlanned: number | null;
  /** 'off' when no tracking URI is configured. */
  tracking: 'off' | { uri: string; experiment: string; runId: string | null; synced: number; unsent: LoggedEvent[] };
  error?: string;
}

/** What a run folder holds and how much of its log has not reached the tracking server. Local only. */
export function folderStatus(dir: string, env: NodeJS.ProcessEnv = process.env): FolderStatus {
  const record = readJson<RunJson>(join(dir, 'run.json'));
  const events = readEvents(dir);
  const epochs = new Set(events.flatMap((e) => (e.type === 'epoch' ? [e.epoch] : [])));
  const base = { dir, status: record?.status ?? 'planned', epochsDone: epochs.size, epochsPlanned: null as number | null };
  try {
    if (!existsSync(join(dir, 'config.yaml'))) throw new Error('no config.yaml');
    const tracking = trackingOf(dir, env);
    const epochsPlanned = readRunConfig(dir).training.epochs;
    if (!tracking) return { ...base, epochsPlanned, tracking: 'off' };
    const uri = new MlflowClient({ uri: tracking.uri }).uri; // as the sink stores it: no credentials
    const state = readRunState(dir, { trackingUri: uri, experiment: tracking.experiment });
    const cursor = state?.cursor ?? 0;
    return {
      ...base, epochsPlanned,
      tracking: { uri, experiment: tracking.experiment, runId: state?.runId ?? null, synced: cursor, unsent: events.filter((e) => e.seq > cursor) },
    };
  } catch (e) {
    return { ...base, tracking: 'off', error: e instanceof Error ? e.message : String(e) };
  }
}
