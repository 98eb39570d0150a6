/**
 * Finding or creating the sink's MLflow runs so that no run is ever made twice: the sweep's
 * parent (one per sweep folder) and each run folder's child.
 *
 * Creation is "search by tag, then create, then search again": the search before finds a run
 * that an earlier, interrupted sync made (its local state lost, or the create's answer lost),
 * and the search after settles a race. Two creators (two processes, or one POST that the
 * client retried after its answer was lost) may each make a run; every creator then picks the
 * same one, the earliest by (start_time, run_id), and marks the others with the tag
 * exp.duplicate_of and status KILLED (the REST client has no delete), so the tree stays right.
 */
import { toRecord, type MlflowClient, type Run } from '../mlflow/client.js';
import { parentTags, type RunFacts } from './sync-map.js';
import { readSweepState, sinkLock, writeSweepState, type SinkTarget, type SweepSinkState } from './sink-state.js';
import { readSweepIndex } from '../store/sweep.js';

const quote = (s: string): string => `'${s.replace(/\\/g, '\\\\').replace(/'/g, "\\'")}'`;
export const tagEquals = (key: string, value: string): string => `tags.\`${key}\` = ${quote(value)}`;

const earliest = (a: Run, b: Run): number => a.info.start_time - b.info.start_time || (a.info.run_id < b.info.run_id ? -1 : 1);

/**
 * The one live run matching `filter` (and `accept`), creating it with `create` when there is
 * none. `created` says whether this call made it; `adopted` that it already existed.
 */
export async function findOrCreateRun(
  client: MlflowClient,
  experimentId: string,
  filter: string,
  accept: (r: Run) => boolean,
  create: () => Promise<string>,
): Promise<{ runId: string; adopted: boolean }> {
  const find = async (): Promise<Run[]> =>
    (await client.searchAllRuns({ experimentIds: [experimentId], filter }))
      .filter((r) => accept(r) && toRecord(r.data.tags)['exp.duplicate_of'] === undefined)
      .sort(earliest);
  const before = await find();
  if (before.length > 0) {
    await markDuplicates(client, before);
    return { runId: before[0]!.info.run_id, adopted: true };
  }
  const made = await create();
  const after = await find();
  if (after.length === 0) return { runId: made, adopted: false }; // search lags behind create: ours is the one
  await markDuplicates(client, after);
  return { runId: after[0]!.info.run_id, adopted: after[0]!.info.run_id !== made };
}

async function markDuplicates(client: MlflowClient, runs: readonly Run[]): Promise<void> {
  const keep = runs[0]!.info.run_id;
  for (const r of runs.slice(1)) {
    await client.setTag(r.info.run_id, 'exp.duplicate_of', keep);
    await client.updateRun(r.info.run_id, 'KILLED');
  }
}

export interface SweepInfo {
  experiment: string;
  sweep: string;
  sweepUid: string;
  facts: RunFacts;
}

/**
 * The parent run of the sweep folder `sweepDir` (stored in its .mlflow.json), found by the
 * sweep folder's uid or made. Workers on other machines that plan the same sweep from one
 * queue share that uid, and so the parent.
 * Concurrent syncs of one sweep on this machine take turns through the folder's lock.
 */
export async function ensureParent(sweepDir: string, client: MlflowClient, target: SinkTarget, experimentId: string, info: SweepInfo): Promise<SweepSinkState> {
  const known = readSweepState(sweepDir, target);
  if (known?.experimentId === experimentId) return known;
  const release = await sinkLock(sweepDir, 60_000); // without it, the search after create still settles a race
  try {
    const again = readSweepState(sweepDir, target);
    if (again?.experimentId === experimentId) return again;
    const index = readSweepIndex(sweepDir);
    const created = index?.created ? Date.parse(index.created) : NaN;
    const filter = tagEquals('exp.sweep_uid', info.sweepUid);
    const { runId } = await findOrCreateRun(
      client,
      experimentId,
      filter,
      (r) => toRecord(r.data.tags)['mlflow.parentRunId'] === undefined,
      async () =>
        (
          await client.createRun({
            experimentId,
            runName: info.sweep,
            tags: parentTags(info.experiment, info.sweep, info.sweepUid, index?.points?.length, info.facts),
            ...(info.facts.user ? { userId: info.facts.user } : {}),
            ...(Number.isFinite(created) ? { startTime: created } : {}),
          })
        ).run_id,
    );
    const state: SweepSinkState = { ...target, experimentId, parentRunId: runId, status: 'RUNNING' };
    writeSweepState(sweepDir, state);
    await describeExperiment(client, experimentId, info, index?.file);
    return state;
  } finally {
    release?.();
  }
}

/**
 * Tags of the MLflow experiment, set once (a note the user wrote in the UI is kept): what it is
 * and where it came from, so the experiment page says more than its name.
 */
async function describeExperiment(client: MlflowClient, experimentId: string, info: SweepInfo, file: string | undefined): Promise<void> {
  const exp = await client.getExperimentByName(info.experiment);
  const has = new Set((exp?.tags ?? []).map((t) => t.key));
  const tags: Record<string, string> = {
    'exp.experiment': info.experiment,
    ...(file ? { 'exp.file': file } : {}),
    ...(has.has('mlflow.note.content')
      ? {}
      : {
          'mlflow.note.content': `Runs of the experiment file \`${file ?? info.experiment}\`, recorded by exp: one parent run per sweep, one child run per sweep point. Rank children with \`metrics.final_val_fbeta DESC\`.`,
        }),
  };
  for (const [k, v] of Object.entries(tags)) if (!has.has(k) || k !== 'mlflow.note.content') await client.setExperimentTag(experimentId, k, v);
}

/** Sets the parent's status, remembering it so the same status is not sent again. */
export async function setParentStatus(
  sweepDir: string,
  client: MlflowClient,
  state: SweepSinkState,
  status: SweepSinkState['status'],
  endTime?: number,
): Promise<void> {
  if (state.status === status) return;
  await client.updateRun(state.parentRunId, status, endTime);
  writeSweepState(sweepDir, { ...(readSweepState(sweepDir, state) ?? state), status }); // what a refresh added meanwhile stays
}

/**
 * Sets the status of a sweep's parent run found by the sweep's uid, for sweeps whose points
 * ran on queue workers (no one machine holds every point's folder). Returns the parent's id,
 * or undefined when no point of the sweep reached the server.
 */
export async function settleParentByUid(
  client: MlflowClient,
  experiment: string,
  sweepUid: string,
  status: SweepSinkState['status'],
): Promise<string | undefined> {
  const exp = await client.getExperimentByName(experiment);
  if (!exp) return undefined;
  const parents = (await client.searchAllRuns({ experimentIds: [exp.experiment_id], filter: tagEquals('exp.sweep_uid', sweepUid) })).filter(
    (r) => toRecord(r.data.tags)['mlflow.parentRunId'] === undefined && toRecord(r.data.tags)['exp.duplicate_of'] === undefined,
  );
  for (const p of parents) if (p.info.status !== status) await client.updateRun(p.info.run_id, status);
  return parents[0]?.info.run_id;
}
