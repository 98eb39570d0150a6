/**
 * Syncing many run folders (after `exp run`, or `exp sync PATH`), then settling each sweep's
 * parent run: FINISHED once every point has ended and is fully sent (FAILED if one failed,
 * KILLED if one was killed; pruned points count as finished), RUNNING while any point is
 * unfinished. Also what `exp status` reads: how far each folder's cursor is behind its log,
 * without asking the server.
 */
import { join } from 'node:path';
import { clientsFromEnv, type ClientFor, type MlflowClient } from '../mlflow/client.js';
import { normalTrackingUri } from '../mlflow/uri.js';
import { readEvents, type LoggedEvent } from './events.js';
import { readRunState, readSweepState, type SinkTarget, type SweepSinkState } from './sink-state.js';
import { setParentStatus } from './sync-runs.js';
import { refreshParent } from './sweep-parent.js';
import { syncRun, type SyncOptions, type SyncResult } from './sync.js';
import { trackingOf, type Tracking } from './target.js';
import { sweepDirOf } from '../store/layout.js';
import { readRunConfig, readRunRecord } from '../store/run.js';
import { readSweepIndex } from '../store/sweep.js';
import { shownStatus } from '../store/status.js';
import { ENDED_STATUSES, type RunRecord } from '../store/types.js';

export interface SweepSyncResult {
  dir: string;
  parentRunId: string;
  status: SweepSinkState['status'];
  error?: string;
  warnings?: string[];
}

export interface SyncFoldersResult {
  runs: SyncResult[];
  sweeps: SweepSyncResult[];
}

/** Syncs each folder in turn (never throws), then updates the parents of the sweeps they belong to. */
export async function syncFolders(
  dirs: readonly string[],
  clients: ClientFor = clientsFromEnv(),
  opts: SyncOptions & { onRun?: (r: SyncResult) => void; deadline?: number } = {},
): Promise<SyncFoldersResult> {
  const runs: SyncResult[] = [];
  for (const dir of dirs) {
    // Past the deadline (exp run's final sync is bounded), the rest waits for `exp sync`.
    const left = opts.deadline === undefined ? undefined : opts.deadline - Date.now();
    const r =
      left !== undefined && left <= 0
        ? { dir, outcome: 'pending' as const, sent: 0, pending: readEvents(dir).events.length, warnings: [] }
        : await syncRun(dir, clients, { ...opts, ...(left !== undefined ? { budgetMs: left } : {}) });
    opts.onRun?.(r);
    runs.push(r);
  }
  const sweeps: SweepSyncResult[] = [];
  for (const sweepDir of new Set(
    runs.filter((r) => r.uri !== undefined && r.experiment !== undefined && r.outcome !== 'failed').map((r) => sweepDirOf(r.dir)),
  )) {
    const one = runs.find((r) => sweepDirOf(r.dir) === sweepDir)!;
    const s = await settleParent(sweepDir, clients(one.uri!), { trackingUri: one.uri!, experiment: one.experiment! });
    if (s) sweeps.push(s);
  }
  return { runs, sweeps };
}

const ENDED = new Set<string>(ENDED_STATUSES);

/** Sets the parent's status from its points' run.json and sink states; never throws. */
async function settleParent(sweepDir: string, client: MlflowClient, target: SinkTarget): Promise<SweepSyncResult | undefined> {
  const state = readSweepState(sweepDir, target);
  if (!state) return undefined; // no point of this sweep reached the server yet
  const dirs = (readSweepIndex(sweepDir)?.points ?? []).map((p) => join(sweepDir, p.dir));
  const records = dirs.map((d) => readRunRecord(d));
  const sent = (d: string): boolean => (readRunState(d, target)?.cursor ?? 0) >= lastSeq(readEvents(d).events);
  const done = dirs.length > 0 && dirs.every((d, i) => ENDED.has(records[i]?.status ?? '') && sent(d));
  const status: SweepSinkState['status'] = !done
    ? 'RUNNING'
    : records.some((r) => r?.status === 'failed')
      ? 'FAILED'
      : records.some((r) => r?.status === 'killed')
        ? 'KILLED'
        : 'FINISHED';
  const endTime = done ? Math.max(...records.map((r) => Date.parse(r?.ended ?? '') || 0)) || undefined : undefined;
  try {
    await setParentStatus(sweepDir, client, state, status, endTime);
    const warnings = await refreshParent(sweepDir, client, target);
    return { dir: sweepDir, parentRunId: state.parentRunId, status, ...(warnings.length ? { warnings } : {}) };
  } catch (e) {
    return { dir: sweepDir, parentRunId: state.parentRunId, status: state.status, error: e instanceof Error ? e.message : String(e) };
  }
}

const lastSeq = (events: readonly LoggedEvent[]): number => events.reduce((m, e) => Math.max(m, e.seq), 0);

export interface FolderStatus {
  dir: string;
  /** run.json's status ('planned' when the folder has not been trained; 'interrupted' when its process is gone). */
  status: RunRecord['status'] | 'interrupted';
  epochsDone: number;
  epochsPlanned: number | null;
  /** 'off' when no tracking URI is configured or recorded. */
  tracking: 'off' | { uri: string; experiment: string; source: Tracking['source']; runId: string | null; synced: number; unsent: LoggedEvent[] };
  /** Damaged lines in events.jsonl: sync refuses the run until it is rebuilt. */
  damaged: number;
  error?: string;
}

/** What a run folder holds and how much of its log has not reached the tracking server. Local only. */
export function folderStatus(dir: string, env: NodeJS.ProcessEnv = process.env): FolderStatus {
  const log = readEvents(dir);
  const epochs = new Set(log.events.flatMap((e) => (e.type === 'epoch' ? [e.epoch] : [])));
  const base = {
    dir,
    status: shownStatus(dir, readRunRecord(dir)),
    epochsDone: epochs.size,
    epochsPlanned: null as number | null,
    damaged: log.damaged.length,
  };
  try {
    const epochsPlanned = readRunConfig(dir).training.epochs;
    const tracking = trackingOf(dir, env);
    if (!tracking) return { ...base, epochsPlanned, tracking: 'off' };
    const uri = normalTrackingUri(tracking.uri); // as the sink stores it: no credentials
    const state = readRunState(dir, { trackingUri: uri, experiment: tracking.experiment });
    const cursor = state?.cursor ?? 0;
    return {
      ...base,
      epochsPlanned,
      tracking: {
        uri,
        experiment: tracking.experiment,
        source: tracking.source,
        runId: state?.runId ?? null,
        synced: cursor,
        unsent: log.events.filter((e) => e.seq > cursor),
      },
    };
  } catch (e) {
    return { ...base, tracking: 'off', error: e instanceof Error ? e.message : String(e) };
  }
}
