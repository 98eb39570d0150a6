/**
 * Taking over a queued point without shared storage: the worker that had it uploaded each
 * checkpoint to the tracking server (takeover/<label>/, then the pointer takeover/LATEST);
 * the worker that takes the job downloads the newest into its own run folder's
 * checkpoints/last, and `exp train` resumes from it as from a local checkpoint. The MLflow
 * run is found by the folder's uid, which the job carries.
 */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { MlflowClient } from '../mlflow/client.js';
import { toRecord } from '../mlflow/client.js';
import { checkpointDir } from '../store/layout.js';
import { replaceDirAtomic } from '../util/fsx.js';

const TAKEOVER = 'takeover';

export interface Fetched {
  runId: string;
  label: string;
  files: number;
  bytes: number;
}

/**
 * Downloads the newest uploaded checkpoint of the run with `uid` into `runDir`'s
 * checkpoints/last; undefined when the server has none (the point starts from scratch).
 */
export async function fetchCheckpoint(client: MlflowClient, experiment: string, uid: string, runDir: string): Promise<Fetched | undefined> {
  const exp = await client.getExperimentByName(experiment);
  if (!exp) return undefined;
  const runs = (await client.searchAllRuns({ experimentIds: [exp.experiment_id], filter: `tags.\`exp.uid\` = '${uid.replace(/'/g, '')}'` })).filter(
    (r) => toRecord(r.data.tags)['exp.duplicate_of'] === undefined,
  );
  for (const run of runs) {
    const runId = run.info.run_id;
    let label: string;
    try {
      label = Buffer.from(await client.downloadArtifact(runId, `${TAKEOVER}/LATEST`))
        .toString('utf8')
        .trim();
    } catch {
      continue;
    }
    if (!/^[\w.-]+$/.test(label)) continue;
    const listed = (await client.listArtifacts(runId, `${TAKEOVER}/${label}`)).filter((f) => !f.isDir);
    if (listed.length === 0) continue;
    let bytes = 0;
    await replaceDirAtomic(checkpointDir(runDir, 'last'), async (tmp) => {
      for (const f of listed) {
        const data = await client.downloadArtifact(runId, f.path);
        bytes += data.byteLength;
        writeFileSync(join(tmp, f.path.split('/').at(-1)!), data);
      }
    });
    return { runId, label, files: listed.length, bytes };
  }
  return undefined;
}
