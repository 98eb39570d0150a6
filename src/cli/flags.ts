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
    throw new UsageError(
      `${missing.map((p) => `'${p}'`).join(', ')} do${missing.length === 1 ? 'es' : ''} not exist`,
      'PATH_NOT_FOUND',
      'give a run, sweep or experiment folder, or the runs folder',
    );
  }
  const roots = paths.length > 0 ? paths.map((p) => resolve(cwd, p)) : [runsDirOf(undefined, io)];
  return [...new Set(roots.flatMap((p) => findRunDirs(p)))];
}
