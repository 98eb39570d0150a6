/**
 * The takeover upload (queued runs): a checkpoint staged by the trainer goes up whole under
 * takeover/<label>/ before the pointer takeover/LATEST names it, so another worker resuming the
 * point never reads half of one; older uploads are then removed as best it can.
 */
import { existsSync, readdirSync, rmSync, statSync } from 'node:fs';
import { join } from 'node:path';
import type { MlflowClient } from '../mlflow/client.js';
import type { SinkContext } from './sink-state.js';

/** The artifact folder holding the checkpoint another worker resumes from (queued runs). */
export const TAKEOVER = 'takeover';

/**
 * Uploads a staged checkpoint for takeover: its files under takeover/<label>/, then the
 * pointer takeover/LATEST, then removes older uploads (remote and staged) as best it can.
 * A staging folder already gone was superseded by a newer checkpoint event: skipped.
 */
export async function uploadTakeover(sink: SinkContext, seq: number, rel: string, label: string, superseded: boolean): Promise<void> {
  const files = superseded ? [] : listFiles(sink.dir, rel);
  const runId = sink.state.runId!;
  if (files.length > 0) {
    await sink.uploadFiles(seq, files, (f) => `${TAKEOVER}/${label}/${f.slice(rel.length + 1)}`);
    let previous: string | undefined;
    try {
      previous = Buffer.from(await sink.client.downloadArtifact(runId, `${TAKEOVER}/LATEST`))
        .toString('utf8')
        .trim();
    } catch {
      previous = undefined;
    }
    // Labels are save times: a newer one named by LATEST (another worker's, which took the
    // point over while this process was finishing) stays the one a takeover resumes from.
    const newest = previous !== undefined && labelTime(previous) > labelTime(label) ? previous : label;
    if (newest === label) await sink.client.uploadArtifact(runId, `${TAKEOVER}/LATEST`, label);
    await pruneTakeover(sink.client, runId, newest);
  }
  rmSync(join(sink.dir, rel), { recursive: true, force: true });
}

/**
 * Removes the uploads that the complete one LATEST names (`keep`) replaces: the one before it,
 * and any an earlier sync left half-sent (it timed out, then a newer checkpoint superseded
 * it). Only older ones: a newer upload may be under way from another worker. Best effort:
 * what is left goes with the next checkpoint, or with the run's end (checkpoint_done).
 */
async function pruneTakeover(client: MlflowClient, runId: string, keep: string): Promise<void> {
  let listed: { path: string; isDir: boolean }[];
  try {
    listed = await client.listArtifacts(runId, TAKEOVER);
  } catch {
    return;
  }
  for (const f of listed) {
    const name = f.path.split('/').at(-1)!;
    if (f.isDir && name !== keep && /^\d+$/.test(name) && labelTime(name) < labelTime(keep))
      await client.deleteArtifact(runId, `${TAKEOVER}/${name}`).catch(() => undefined);
  }
}

/** When a takeover checkpoint was saved: its label is the time in ms (see stageForUpload); 0 for any other name. */
const labelTime = (label: string): number => (/^\d+$/.test(label) ? Number(label) : 0);

/** Files under `rel` in the run folder ('/'-separated, sorted): `rel` itself when it is a file. */
export function listFiles(runDir: string, rel: string): string[] {
  const abs = join(runDir, rel);
  if (rel.split('/').includes('..') || !existsSync(abs)) return [];
  if (!statSync(abs).isDirectory()) return [rel];
  return readdirSync(abs)
    .filter((n) => !n.startsWith('.'))
    .sort()
    .flatMap((n) => listFiles(runDir, `${rel}/${n}`));
}
