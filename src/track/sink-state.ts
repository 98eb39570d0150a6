/**
 * What the MLflow sink remembers between calls, kept beside the data it describes:
 *
 *   <sweep>/.mlflow.json        the sweep's parent run (SweepSinkState)
 *   <sweep>/<run>/.mlflow.json  the run's child run and its cursor in events.jsonl (RunSinkState)
 *
 * Both are written atomically after every step, so a crash or an outage at any point leaves
 * a state that the next sync continues from. The tracking URI is stored without credentials.
 * A state written for another server or experiment is ignored (the sink starts over there).
 */
import { join } from 'node:path';
import { readJson, writeJsonAtomic } from '../util/fsx.js';
import { tryLock } from '../store/lock.js';
import { RUN_FILES } from '../store/layout.js';
import type { MlflowClient } from '../mlflow/client.js';

const SINK_FILE = RUN_FILES.sink;
const LOCK_FILE = RUN_FILES.sinkLock;

/** Where a run is sent: the server (no credentials) and the MLflow experiment name. */
export interface SinkTarget {
  trackingUri: string;
  experiment: string;
}

export interface RunSinkState extends SinkTarget {
  experimentId: string;
  runId: string | null;
  parentRunId: string | null;
  /** The run key (from run_started), for the note. */
  key: string | null;
  /** The folder's uid (point.json): the MLflow run is found again by it. */
  uid: string | null;
  /** seq of the last event fully sent; every event up to it is on the server. */
  cursor: number;
  /**
   * Events up to this seq may have reached the server without our knowing (a failure after
   * the request left, or a run adopted after its local state was lost): their metric points
   * are checked against the server's history before they are sent.
   */
  verifyUntil: number;
  /** Files (relative paths) uploaded at least once. */
  artifactsSent: string[];
  /** Files already uploaded for the artifact event `seq` that is half done. */
  inFlight: { seq: number; done: string[] } | null;
  /** The folder this state was written for (host, real path, inode): a copy has another. */
  folder?: string;
  /** The logged model made for the 'model' event (kept so a retry uploads into the same one). */
  model?: { id: string; artifactUri: string; ready: boolean };
  /** Whether this folder's history was found to agree with the MLflow run's (see RunSink.checkAgreement). */
  agreed?: boolean;
}

/** What one sync call's concerns (the sink, the takeover upload, the logged model) share about one run folder. */
export interface SinkContext {
  readonly dir: string;
  readonly client: MlflowClient;
  readonly state: RunSinkState;
  /** Things left out on purpose, for the sync's result. */
  readonly warnings: string[];
  /** Writes the state to the folder (after every step). */
  save(): void;
  /** Uploads files of the run folder (as `as` names them), remembering which are done should the event fail part-way. */
  uploadFiles(seq: number, files: readonly string[], as: (f: string) => string): Promise<void>;
}

export interface SweepSinkState extends SinkTarget {
  experimentId: string;
  parentRunId: string;
  /** The parent's status as last set by the sink. */
  status: 'RUNNING' | 'FINISHED' | 'FAILED' | 'KILLED';
  /** A digest of the parent summary last sent (sweep-parent.ts): an unchanged one is not sent again. */
  summary?: string;
  /** The registry version made for tracking.register_model (once per sweep). */
  registered?: { name: string; version: string; runId: string };
}

const sameTarget = (a: SinkTarget | undefined, b: SinkTarget): boolean => a !== undefined && a.trackingUri === b.trackingUri && a.experiment === b.experiment;

/** The run's sink state for `target`, or undefined when it has none for that target. */
export function readRunState(runDir: string, target: SinkTarget): RunSinkState | undefined {
  const s = readJson<RunSinkState>(join(runDir, SINK_FILE));
  if (!s || !sameTarget(s, target)) return undefined;
  return { ...s, uid: s.uid ?? null, verifyUntil: s.verifyUntil ?? 0, artifactsSent: s.artifactsSent ?? [], inFlight: s.inFlight ?? null };
}

/** The run's sink state whatever its target (the server it was last sent to). */
export const readAnyRunState = (runDir: string): RunSinkState | undefined => readJson<RunSinkState>(join(runDir, SINK_FILE));

export const writeRunState = (runDir: string, s: RunSinkState): void => writeJsonAtomic(join(runDir, SINK_FILE), s);

export function readSweepState(sweepDir: string, target: SinkTarget): SweepSinkState | undefined {
  const s = readJson<SweepSinkState>(join(sweepDir, SINK_FILE));
  return sameTarget(s, target) ? s : undefined;
}

export const writeSweepState = (sweepDir: string, s: SweepSinkState): void => writeJsonAtomic(join(sweepDir, SINK_FILE), s);

/**
 * Takes `<dir>/.mlflow.lock` (separate from the training lock, which a sync in the trainer's
 * own process must not touch); returns a release function, or undefined while another live
 * process holds it. A lock left by a dead process is taken over. Waits up to `waitMs`.
 */
export async function sinkLock(dir: string, waitMs = 0): Promise<(() => void) | undefined> {
  const lock = await tryLock(join(dir, LOCK_FILE), { waitMs, heartbeat: 'timer' });
  return lock ? () => lock.release() : undefined;
}
