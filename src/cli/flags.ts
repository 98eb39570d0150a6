/** Flags that several commands share, defined once so their names and help never drift. */
import { existsSync } from 'node:fs';
import { resolve } from 'node:path';
import { DEFAULT_RUNS_DIR } from '../store/layout.js';
import { findRunDirs } from '../store/list.js';
import { UsageError } from '../errors.js';
import { cwdOf, type Io } from './io.js';

export const SET_FLAG = { type: 'list', arg: 'path=value', description: 'Override a setting (a YAML value; a list sweeps it).' } as const;
export const RUNS_DIR_FLAG = { type: 'string', arg: 'DIR', description: `Run store folder (default ${DEFAULT_RUNS_DIR}/, or $EXP_RUNS_DIR).` } as const;
export const JSON_FLAG = { type: 'boolean', description: 'Print JSON instead of a table.' } as const;
export const QUEUE_FLAG = { type: 'string', arg: 'URL', description: 'The queue: redis://[user:password@]host[:port][/db], or rediss:// for TLS.' } as const;
export const GPUS_FLAG = { type: 'string', arg: 'IDS', description: 'GPUs to use, e.g. 0,1: each point gets one (CUDA_VISIBLE_DEVICES).' } as const;
/** exp run's --workers and exp worker's --concurrency: how many points train at once. */
export const POINTS_AT_ONCE_FLAG = {
  type: 'int',
  arg: 'N',
  min: 1,
  max: 256,
  description: 'Points trained at once (default 1, or one per GPU with --gpus).',
} as const;

/** Parses GPUS_FLAG (--gpus 0,1,3) into GPU ids. */
export function parseGpus(spec: string | undefined): string[] | undefined {
  if (spec === undefined) return undefined;
  const ids = spec
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean);
  if (ids.length === 0 || ids.some((g) => !/^\d+$/.test(g)))
    throw new UsageError({
      code: 'BAD_OPTION_VALUE',
      message: `--gpus '${spec}' is not a list of GPU numbers`,
      fix: 'write them as nvidia-smi numbers them, e.g. --gpus 0,1',
    });
  return ids;
}

// The flags of the commands that use a trained model (evaluate, predict, export, ensemble).
export const BACKEND_FLAG = {
  type: 'string',
  arg: 'NAME',
  default: 'auto',
  choices: ['auto', 'tensorflow-gpu', 'tensorflow', 'wasm', 'cpu'],
  description: 'Backend to run the model on.',
} as const;
/** The values BACKEND_FLAG allows (the parser has checked them). */
export type BackendChoice = (typeof BACKEND_FLAG.choices)[number];
export const TTA_FLAG = {
  type: 'boolean',
  description: 'Test-time augmentation: average the probabilities over the 8 rotations and flips of each image (8x the compute).',
} as const;
export const THRESHOLDS_FLAG = {
  type: 'string',
  arg: 'tuned|P',
  default: 'tuned',
  description:
    "Per-tag thresholds tuned after training (the run's thresholds.json; the run's metrics.threshold when it has none), or one probability P for every tag.",
} as const;

export const CHECKPOINT_FLAG = {
  type: 'string',
  arg: 'best|last',
  choices: ['best', 'last'],
  description: 'Which checkpoint to use (default: best, or last for a run that never saved a best). A damaged one is an error, never replaced by the other.',
} as const;
/** --force of the commands that write a model's output (export, predict); exp run and exp train have their own --force. */
export const FORCE_OUTPUT_FLAG = { type: 'boolean', description: 'Replace an output file that exp did not write.' } as const;
/** exp run --launcher: where the points train. slurm: one job array (see cli/slurm.ts). */
export const LAUNCHER_FLAG = {
  type: 'string',
  arg: 'local|slurm',
  choices: ['local', 'slurm'],
  description:
    'Where the points train: here (local, the default), or as one Slurm job array submitted with sbatch (options: launcher.slurm, --set launcher.slurm.X=...).',
} as const;

/** The runs folder: --runs-dir, else $EXP_RUNS_DIR (when not empty), else runs/, resolved against the working folder. */
export const runsDirOf = (flag: string | undefined, io: Io): string => resolve(cwdOf(io), flag || io.env.EXP_RUNS_DIR || DEFAULT_RUNS_DIR);

/**
 * The run folders under PATHs (run, sweep, experiment folders or a runs folder; default the
 * runs folder). A PATH that does not exist is a usage error (exit 2).
 */
export function runFoldersUnder(paths: readonly string[], io: Io): string[] {
  const cwd = cwdOf(io);
  const missing = paths.filter((p) => !existsSync(resolve(cwd, p)));
  if (missing.length > 0) {
    throw new UsageError({
      code: 'PATH_NOT_FOUND',
      message: `${missing.map((p) => `'${p}'`).join(', ')} do${missing.length === 1 ? 'es' : ''} not exist`,
      fix: 'give a run, sweep or experiment folder, or the runs folder',
    });
  }
  const roots = paths.length > 0 ? paths.map((p) => resolve(cwd, p)) : [runsDirOf(undefined, io)];
  return [...new Set(roots.flatMap((p) => findRunDirs(p)))];
}
