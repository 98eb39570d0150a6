/**
 * The contract between a launcher (exp run, a queue worker, exp reproduce) and its `exp train`
 * child, all of it in this file and all of it plain data, so launchers need nothing from the
 * trainer's modules:
 *  - the launch settings: one JSON object in one environment variable (EXP_LAUNCH), written by
 *    launchEnv() and parsed and checked once by readLaunchSettings() in the child;
 *  - the messages over the child's IPC channel (FromChild, ToChild);
 *  - the exit statuses (EXIT), which the launcher reads back from the child (75: busy).
 * User-facing variables (MLFLOW_TRACKING_URI, EXP_CACHE_DIR, CUDA_VISIBLE_DEVICES, ...) are not
 * part of it: the child reads them as any exp command does.
 */
import { ExpError } from '../errors.js';

/**
 * Exit statuses, the same for every exp process: 2 for invalid input of any kind (a config, a
 * path or option on the command line), 1 for a run or operation that failed, 75 when another
 * live process is training the run folder (EX_TEMPFAIL: not a failure; a launcher reads it back
 * from its child), 130 for an interrupted one, 70 for a bug in exp. Only cli/main.ts and bin/
 * end the process; commands return one of these.
 */
export const EXIT = { ok: 0, failed: 1, invalid: 2, bug: 70, busy: 75, interrupted: 130 } as const;

export type ExitCode = (typeof EXIT)[keyof typeof EXIT];

/** What a launcher tells its child before it starts (one object, in LAUNCH_VAR). */
export interface LaunchSettings {
  /** Who launched it: recorded in run.json; a queued run waits longer for its end to reach MLflow. */
  launcher: 'local' | 'queue' | 'slurm';
  /** The queue worker's name (shown by exp queue status), recorded in run.json. */
  worker?: string;
  /** Stage each checkpoint for upload to the tracking server: a queued run another worker may have to resume. */
  uploadCheckpoints: boolean;
  /** Epochs the child waits at for the sweep scheduler's verdict before training on (ASHA rungs), ascending. */
  holdEpochs: number[];
  /**
   * Track to MLFLOW_TRACKING_URI only (to no server when it is unset), whatever config.yaml or a
   * recorded server says: a queue worker chose the server its credentials go to (exec/trust.ts).
   */
  pinTracking: boolean;
}

/** The one environment variable of the contract. */
export const LAUNCH_VAR = 'EXP_LAUNCH';

/** The child's environment entry for `s`. */
export function launchEnv(s: LaunchSettings): { [LAUNCH_VAR]: string } {
  return { [LAUNCH_VAR]: JSON.stringify(s) };
}

/** Longer than any settings object a launcher writes (64 rungs, a worker name). */
const MAX_SETTINGS_CHARS = 16_384;
const KEYS: readonly (keyof LaunchSettings)[] = ['launcher', 'worker', 'uploadCheckpoints', 'holdEpochs', 'pinTracking'];

function invalid(why: string): ExpError {
  return new ExpError({
    code: 'LAUNCH_SETTINGS_INVALID',
    message: `${LAUNCH_VAR} is not the settings an exp launcher writes: ${why}`,
    fix: `exp run and exp worker set ${LAUNCH_VAR} for the exp train children they start; unset it to train a folder by hand (exp train RUN_DIR)`,
    exit: 'invalid',
  });
}

/** The settings as checked data, or why they are not. */
function checkSettings(v: unknown): LaunchSettings {
  if (typeof v !== 'object' || v === null || Array.isArray(v)) throw invalid('not a JSON object');
  const o = v as Record<string, unknown>;
  const unknown = Object.keys(o).filter((k) => !(KEYS as readonly string[]).includes(k));
  if (unknown.length > 0) throw invalid(`unknown key ${JSON.stringify(unknown[0])}`);
  if (o.launcher !== 'local' && o.launcher !== 'queue' && o.launcher !== 'slurm') throw invalid('launcher must be "local", "queue" or "slurm"');
  if (o.worker !== undefined && (typeof o.worker !== 'string' || o.worker.length === 0 || o.worker.length > 1000))
    throw invalid('worker must be a name of 1 to 1000 characters');
  for (const k of ['uploadCheckpoints', 'pinTracking'] as const) if (typeof o[k] !== 'boolean') throw invalid(`${k} must be true or false`);
  const hold = o.holdEpochs;
  const epoch = (e: unknown): boolean => Number.isInteger(e) && (e as number) >= 1 && (e as number) <= 1_000_000;
  if (!Array.isArray(hold) || hold.length > 64 || !hold.every(epoch) || hold.some((e, i) => i > 0 && e <= hold[i - 1]))
    throw invalid('holdEpochs must be at most 64 ascending epoch numbers');
  return {
    launcher: o.launcher,
    ...(o.worker !== undefined ? { worker: o.worker as string } : {}),
    uploadCheckpoints: o.uploadCheckpoints as boolean,
    holdEpochs: hold as number[],
    pinTracking: o.pinTracking as boolean,
  };
}

/**
 * The child's side: the settings its launcher passed, checked, or undefined when no launcher
 * started it (`exp train` run by hand). A bad value is LAUNCH_SETTINGS_INVALID, never a default.
 */
export function readLaunchSettings(env: NodeJS.ProcessEnv): LaunchSettings | undefined {
  const text = env[LAUNCH_VAR];
  if (text === undefined || text === '') return undefined;
  if (text.length > MAX_SETTINGS_CHARS) throw invalid(`${text.length} characters (at most ${MAX_SETTINGS_CHARS})`);
  let v: unknown;
  try {
    v = JSON.parse(text);
  } catch {
    throw invalid('not JSON');
  }
  return checkSettings(v);
}

/** Where training is inside an epoch. */
export interface BatchProgress {
  epoch: number;
  batch: number;
  batches: number;
  images: number;
  seconds: number;
}

/** Child to launcher. */
export type FromChild =
  | { type: 'started'; backend: string; epochs: number; done: number }
  | ({ type: 'progress' } & BatchProgress)
  | { type: 'epoch'; epoch: number; metrics: Record<string, number>; improved: boolean };

/**
 * Launcher to child: stop at the next batch as killed, or as pruned (the sweep's early-termination rule);
 * go on past `epoch`, a rung the child waits at (LaunchSettings.holdEpochs) for the scheduler's verdict.
 */
export type ToChild = { type: 'stop'; reason: string } | { type: 'prune'; reason: string } | { type: 'go'; epoch: number; note?: string };
