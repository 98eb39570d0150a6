import { statfsSync } from 'node:fs';
import { dirname } from 'node:path';

/**
 * The one error family of exp. Anything a user or a file can cause ends as an ExpError: a
 * stable code from the closed union below, what is wrong, where (a file, and a line and
 * column when there is one), and how to fix it. Only cli/main.ts turns an error into text and
 * an exit status: `invalid` input exits 2 (a config, a path given on the command line, an
 * option), a `failed` run or operation exits 1. Anything else reaching the CLI is a bug in exp.
 *
 * Config files report many problems at once as Problems (config/problem.ts); ConfigError
 * carries them across a stage boundary and is part of this family (code CONFIG_INVALID).
 *
 * Every subclass takes one init object: `new XError({ code, message, fix, ...extra })`, where
 * extra is the subclass's own fields (a file, an HTTP status). A subclass with one fixed code
 * builds its message from its fields and takes just those, still as one object
 * (`new LockedError({ dir, owner })`).
 */

/** What a command was given: arguments, options, paths. */
export type UsageCode = 'USAGE' | 'UNKNOWN_COMMAND' | 'UNKNOWN_OPTION' | 'BAD_OPTION_VALUE' | 'PATH_NOT_FOUND';

/** A data folder, label CSV or image that cannot be used. */
export type DataErrorCode =
  | 'CSV_NOT_FOUND'
  | 'CSV_INVALID'
  | 'IMAGE_DIR_NOT_FOUND'
  | 'BAD_IMAGES'
  | 'EMPTY_DATASET'
  | 'SYNTH_FAILED'
  | 'SPLIT_MISMATCH'
  | 'SPLIT_TOO_SMALL'
  | 'DATA_OUTSIDE_FOLDER'
  | 'UNKNOWN_TAGS';

/** Weight files (ImageNet HDF5, a user's .h5) and checkpoints. */
export type WeightsErrorCode =
  | 'WEIGHTS_NOT_FOUND'
  | 'WEIGHTS_CHECKSUM'
  | 'WEIGHTS_FORMAT'
  | 'WEIGHTS_MISSING_LAYER'
  | 'WEIGHTS_SHAPE'
  | 'WEIGHTS_DOWNLOAD'
  | 'CHECKPOINT_FORMAT'
  | 'CHECKPOINT_MISMATCH'
  | 'CHECKPOINT_CORRUPT';

/** The run store: run and sweep folders and what is in them. */
export type StoreErrorCode =
  | 'NOT_A_RUN_FOLDER'
  | 'NOT_A_SWEEP_FOLDER'
  | 'RUN_CONFIG_INVALID'
  | 'RUN_FILE_CORRUPT'
  | 'LOCKED'
  | 'DISK_FULL'
  | 'PERMISSION_DENIED'
  | 'FILE_TOO_LARGE'
  | 'NOT_A_REGULAR_FILE'
  /** exp sweep simulate: no run folder has recorded epochs of the metric. */
  | 'NO_CURVES';

/** Finding or comparing an original run for `exp reproduce`. */
export type ReproduceErrorCode = 'RUN_NOT_FOUND' | 'RUN_AMBIGUOUS' | 'ORIGINAL_UNUSABLE';

/** The MLflow client; MLflow's own code (e.g. RESOURCE_ALREADY_EXISTS) is MlflowError.errorCode. */
/** MLFLOW_EXPERIMENT_DELETED: the run's experiment is in the server's trash (it can be restored). */
export type MlflowErrorCode =
  'MLFLOW_HTTP' | 'MLFLOW_NETWORK' | 'MLFLOW_TIMEOUT' | 'MLFLOW_VALIDATION' | 'MLFLOW_CONFIG' | 'MLFLOW_CONFLICT' | 'MLFLOW_EXPERIMENT_DELETED';

/** Using a trained model: evaluate, predict, export, ensembles. */
export type ModelUseErrorCode = 'NO_MODEL' | 'INCOMPATIBLE_RUNS' | 'EXPORT_FAILED';

/** The job queue (Redis / BullMQ). */
/** QUEUE_JOB_INVALID: a job a worker took off the queue is not one exp wrote (a path for a name, a config the schema rejects). */
export type QueueErrorCode = 'QUEUE_URL' | 'QUEUE_UNREACHABLE' | 'QUEUE_JOB_INVALID';

/** Slurm (exp run --launcher slurm): no Slurm client here, sbatch/scancel refused (Slurm's message quoted), a task's map that exp did not write. */
export type SlurmErrorCode = 'SLURM_UNAVAILABLE' | 'SLURM_SUBMIT' | 'SLURM_CANCEL' | 'SLURM_TASK_INVALID';

export type ErrorCode =
  | UsageCode
  | 'CONFIG_INVALID'
  | DataErrorCode
  | WeightsErrorCode
  | StoreErrorCode
  | ReproduceErrorCode
  | MlflowErrorCode
  | ModelUseErrorCode
  | QueueErrorCode
  | SlurmErrorCode
  | 'BACKEND_UNAVAILABLE'
  | 'NO_GPU'
  /** exp train's EXP_LAUNCH (the launcher's settings, exec/protocol.ts) is not what a launcher writes. */
  | 'LAUNCH_SETTINGS_INVALID';

/** How the CLI ends for this error: 2 for invalid input, 1 for a failure. */
export type ErrorExit = 'invalid' | 'failed';

export interface ExpErrorInit<C extends ErrorCode = ErrorCode> {
  code: C;
  /** What is wrong, in a sentence or a few lines. */
  message: string;
  /** How to fix it, when that is not already obvious from the message. */
  fix?: string;
  /** Where: a file or folder, and a 1-based line and column when there is one. */
  file?: string;
  line?: number;
  col?: number;
  exit?: ErrorExit;
  cause?: unknown;
}

export class ExpError<C extends ErrorCode = ErrorCode> extends Error {
  readonly code: C;
  readonly fix: string | undefined;
  readonly file: string | undefined;
  readonly line: number | undefined;
  readonly col: number | undefined;
  readonly exit: ErrorExit;

  constructor(init: ExpErrorInit<C>) {
    super(init.message, init.cause === undefined ? undefined : { cause: init.cause });
    this.name = 'ExpError';
    this.code = init.code;
    // An empty fix is no fix (call sites pass `fix: maybe` without a guard).
    this.fix = init.fix || undefined;
    this.file = init.file;
    this.line = init.line;
    this.col = init.col;
    this.exit = init.exit ?? 'invalid';
  }

  /** The message, the place (when the message does not already name it) and the fix, as the CLI prints them. */
  render(): string {
    const lines = [this.message];
    if (this.file !== undefined && !this.message.includes(this.file)) {
      lines.push(`  at ${this.file}${this.line ? `:${this.line}${this.col ? `:${this.col}` : ''}` : ''}`);
    }
    if (this.fix && !this.message.includes(this.fix)) lines.push(`  fix: ${this.fix}`);
    return `${lines.join('\n')} [${this.code}]`;
  }
}

/** A command line that cannot be run as given (exit 2). */
export class UsageError extends ExpError<UsageCode> {
  constructor(init: ExpErrorInit<UsageCode>) {
    super(init);
    this.name = 'UsageError';
  }
}

/** A data problem the user must fix; the message says what and where, `fix` how. */
export class DataError extends ExpError<DataErrorCode> {
  constructor(init: ExpErrorInit<DataErrorCode>) {
    super(init);
    this.name = 'DataError';
  }
}

/** Something in the run store that cannot be read or written as asked. */
export class StoreError extends ExpError<StoreErrorCode> {
  constructor(init: ExpErrorInit<StoreErrorCode>) {
    super(init);
    this.name = 'StoreError';
  }
}

/** A run folder is being trained by another live process. */
export class LockedError extends ExpError<'LOCKED'> {
  readonly dir: string;
  readonly owner: string;

  constructor({ dir, owner }: { dir: string; owner: string }) {
    super({
      code: 'LOCKED',
      message: `run folder ${dir} is being trained by ${owner}`,
      fix: 'wait for it to finish, or stop that process',
      file: dir,
      exit: 'failed',
    });
    this.name = 'LockedError';
    this.dir = dir;
    this.owner = owner;
  }
}

/** The run `exp reproduce` was asked for cannot be found or used. */
export class ReproduceError extends ExpError<ReproduceErrorCode> {
  constructor(init: ExpErrorInit<ReproduceErrorCode>) {
    super(init);
    this.name = 'ReproduceError';
  }
}

/** A trained model cannot be used as asked (evaluate, predict, export, ensemble). */
export class ModelUseError extends ExpError<ModelUseErrorCode> {
  constructor(init: ExpErrorInit<ModelUseErrorCode>) {
    super(init);
    this.name = 'ModelUseError';
  }
}

/** Turns an operating-system error on `file` into a coded one when it is the user's to fix (a full disk, a missing path). */
export function fromSystemError(e: unknown, fallbackFile = 'a file'): ExpError | undefined {
  const code = (e as NodeJS.ErrnoException | undefined)?.code;
  const file = (e as NodeJS.ErrnoException | undefined)?.path ?? fallbackFile;
  if (code === 'ENOSPC' || code === 'EDQUOT') {
    let free = '';
    try {
      const st = statfsSync(dirname(file));
      free = ` (${((st.bavail * st.bsize) / 2 ** 20).toFixed(1)} MiB free there)`;
    } catch {
      /* the folder is gone or special */
    }
    return new StoreError({
      code: 'DISK_FULL',
      message: `no space left on the device while writing ${file}${free}`,
      fix: 'free some disk space (or move EXP_RUNS_DIR / EXP_CACHE_DIR elsewhere), then run the same command again: finished work is kept',
      file,
      exit: 'failed',
      cause: e,
    });
  }
  if (code === 'ENAMETOOLONG')
    return new UsageError({ code: 'USAGE', message: `a path is too long for the file system: ${file.slice(0, 120)}…`, fix: 'use a shorter name' });
  if (code === 'EACCES' || code === 'EPERM' || code === 'EROFS') {
    return new StoreError({
      code: 'PERMISSION_DENIED',
      message: `permission denied writing ${file}`,
      fix: "check the folder's permissions, or use another --runs-dir",
      file,
      exit: 'failed',
      cause: e,
    });
  }
  return undefined;
}
