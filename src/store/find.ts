/**
 * Naming a run on the command line: a run folder, or a run key (or a prefix of at least 4
 * hex digits) looked up under the runs folder, originals preferred over reproductions and
 * finished runs over others. Naming a sweep: a folder, or a sweep name under the runs folder.
 */
import { existsSync, readdirSync, statSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { ReproduceError, UsageError } from '../errors.js';
import { runPath } from './layout.js';
import { listRunFolders } from './list.js';
import { isRunFolder, readPoint, readRunRecord } from './run.js';

/** The original run folder for a run key or a prefix of one, preferring originals over reproductions. */
export function findByKey(runsDir: string, prefix: string): string {
  const all = listRunFolders(runsDir)
    .map(({ dir, entry }) => {
      let key = readRunRecord(dir)?.key ?? entry?.key;
      if (!key)
        try {
          key = readPoint(dir).key;
        } catch {
          key = undefined;
        }
      return { dir, key };
    })
    .filter((c) => c.key?.startsWith(prefix));
  if (all.length === 0)
    throw new ReproduceError({
      code: 'RUN_NOT_FOUND',
      message: `no run folder under ${runsDir} has a run key starting with '${prefix}'`,
      fix: 'check the key with `exp runs`, or give the run folder',
    });
  const keys = [...new Set(all.map((c) => c.key))];
  if (keys.length > 1)
    throw new ReproduceError({
      code: 'RUN_AMBIGUOUS',
      message: `'${prefix}' matches ${keys.length} run keys (${keys.join(', ')})`,
      fix: 'give more of the key',
    });
  const originals = all.filter((c) => !existsSync(runPath(c.dir, 'reproduction')));
  const pool = originals.length > 0 ? originals : all;
  const done = pool.filter((c) => readRunRecord(c.dir)?.status === 'completed');
  const pick = done.length > 0 ? done : pool;
  if (pick.length > 1)
    throw new ReproduceError({
      code: 'RUN_AMBIGUOUS',
      message: `run key ${keys[0]} is in ${pick.length} folders:\n${pick.map((c) => `  ${c.dir}`).join('\n')}`,
      fix: 'give one of the folders',
    });
  return pick[0]!.dir;
}

/** The run folder RUN names: a path to one, or a run key (prefix) under `runsDir`. */
export function findRunFolder(spec: string, cwd: string, runsDir: string): string {
  const path = resolve(cwd, spec);
  if (existsSync(path)) {
    if (!isRunFolder(path))
      throw new ReproduceError({
        code: 'RUN_NOT_FOUND',
        message: `${spec} is not a run folder (it has no config.yaml)`,
        fix: 'give a run folder (runs/<experiment>/<sweep>/<run>) or a run key',
      });
    return path;
  }
  if (/^[0-9a-f]{4,12}$/i.test(spec)) return findByKey(runsDir, spec.toLowerCase());
  throw new ReproduceError({
    code: 'RUN_NOT_FOUND',
    message: `'${spec}' is not a folder and not a run key (12 hex digits, or a prefix of at least 4)`,
    fix: 'give a run folder or a run key (see `exp runs`)',
  });
}

const isDir = (p: string): boolean => existsSync(p) && statSync(p).isDirectory();

/**
 * The sweep folder SWEEP names: a folder (a run folder means its sweep), else
 * <runs>/<experiment>/<sweep>, else a sweep name found under exactly one experiment.
 */
export function findSweepDir(spec: string, cwd: string, runsDir: string): string {
  const direct = resolve(cwd, spec);
  if (isDir(direct)) return isRunFolder(direct) ? dirname(direct) : direct;
  const runs = resolve(cwd, runsDir);
  if (isDir(join(runs, spec))) return join(runs, spec);
  const experiments = isDir(runs) ? readdirSync(runs).filter((e) => !e.startsWith('.') && isDir(join(runs, e))) : [];
  const matches = experiments.filter((e) => isDir(join(runs, e, spec)));
  if (matches.length === 1) return join(runs, matches[0]!, spec);
  const known = experiments.flatMap((e) =>
    readdirSync(join(runs, e))
      .filter((s) => isDir(join(runs, e, s)))
      .map((s) => `${e}/${s}`),
  );
  const hint =
    matches.length > 1
      ? `it is in ${matches.length} experiments (${matches.join(', ')}); give EXPERIMENT/${spec}`
      : known.length > 0
        ? `sweeps under ${runsDir}: ${known.slice(0, 10).join(', ')}${known.length > 10 ? ', ...' : ''}`
        : `${runsDir} holds no sweeps`;
  throw new UsageError({ code: 'PATH_NOT_FOUND', message: `no sweep folder '${spec}' (looked for it as a folder and under ${runsDir})`, fix: hint });
}
