/**
 * Writing a plan into the run store: the sweep folder (sweep.yaml, index.json) and one folder
 * per point (config.yaml, point.json). After this, training reads nothing but the run folder,
 * so local runs, queue workers, resume and reproduce all reduce to "train this folder".
 * Existing run folders keep their files (they may hold finished work).
 */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { randomUUID } from 'node:crypto';
import { stringify } from 'yaml';
import type { Plan } from '../sweep/plan.js';
import { hashOf, withoutExactCacheSettings } from '../sweep/key.js';
import type { RunConfig } from '../config/normalise.js';
import { StoreError, UsageError } from '../errors.js';
import { readFileBounded, writeFileAtomic } from '../util/fsx.js';
import { parseYaml } from '../config/load.js';
import { rankingOf, type Ranking } from '../config/metric.js';
import { experimentSchema } from '../config/schema.js';
import { getPath } from '../util/object.js';
import { runDirName, runPath, sweepDirPath, sweepPath } from './layout.js';
import { readPointFile, writePoint } from './run.js';
import { readSweepIndex, writeSweepIndex } from './sweep-index.js';
import type { SweepIndex, SweepIndexEntry } from './types.js';

/** A sweep id that is stable for the same resolved experiment, so re-running a file resumes its sweep. */
export function defaultSweepId(plan: Plan): string {
  // Where the points train (launcher) changes no point either: moving a sweep to Slurm keeps its folder.
  // Nor does the feature cache where it is exact (sweep/key.ts): sweeps planned before it existed keep their folders.
  const { description: _d, tracking: _t, launcher: _l, ...rest } = withoutExactCacheSettings(plan.experiment);
  // The ranking metric changes no point (as for run keys): re-ranking a sweep keeps its folder, and sweeps planned before sweep.metric keep theirs.
  // A budget changes no point either: raising it and running the file again continues the same sweep.
  if (rest.sweep) {
    const { metric: _m, budget: _b, ...sweep } = rest.sweep;
    return `sweep-${hashOf({ ...rest, sweep }, 8)}`;
  }
  return `sweep-${hashOf(rest, 8)}`;
}

const MAX_SWEEP_YAML_BYTES = 16 << 20;

/**
 * The sweep's ranking: sweep.metric as sweep.yaml has it, or the default (final_val_fbeta) for
 * a folder without one (no sweep.yaml, or planned before sweep.metric). A damaged sweep.yaml,
 * or a metric exp does not know there, is a coded error naming the file.
 */
export function readSweepRanking(sweepDir: string): Ranking {
  const file = sweepPath(sweepDir, 'experiment');
  if (!existsSync(file)) return rankingOf(undefined);
  const fix = 'run exp run on the experiment file again: it rewrites sweep.yaml and keeps every finished point';
  const parsed = parseYaml(file, readFileBounded(file, MAX_SWEEP_YAML_BYTES, 'sweep.yaml').toString('utf8'));
  const bad = (message: string, line?: number): StoreError =>
    new StoreError({ code: 'RUN_FILE_CORRUPT', message, file, ...(line ? { line } : {}), fix, exit: 'failed' });
  if (parsed.problems.length > 0) throw bad(`sweep.yaml ${file} is damaged: ${parsed.problems[0]!.message}`, parsed.problems[0]!.line);
  const metric = getPath(parsed.value, 'sweep.metric');
  if (metric === undefined) return rankingOf(undefined);
  if (metric === null || typeof metric !== 'object' || Array.isArray(metric)) throw bad(`sweep.yaml ${file}: sweep.metric is not a mapping {name, mode}`);
  const name = getPath(metric, 'name');
  const mode = getPath(metric, 'mode');
  const schema = experimentSchema.properties?.sweep?.properties?.metric?.properties;
  const pattern = new RegExp(String(schema?.name?.pattern));
  if ((name !== undefined && (typeof name !== 'string' || !pattern.test(name))) || (mode !== undefined && !(schema?.mode?.enum ?? []).includes(mode)))
    throw bad(`sweep.yaml ${file}: sweep.metric ${JSON.stringify(metric)} is not a metric exp ranks by (name: ${schema?.name?.description ?? ''})`);
  return rankingOf({ ...(name === undefined ? {} : { name: name as string }), ...(mode === undefined ? {} : { mode: mode as 'auto' | 'min' | 'max' }) });
}

const NAME = /^[A-Za-z0-9][A-Za-z0-9._-]*$/;

/** Checks a sweep name given with --sweep as the schema checks `name`: a folder name, never a path. */
export function checkSweepName(name: string): void {
  if (name.length > 100 || !NAME.test(name) || name.includes('..')) {
    throw new UsageError({
      code: 'BAD_OPTION_VALUE',
      message: `--sweep '${name.length > 40 ? `${name.slice(0, 40)}…` : name}' is not a valid sweep name`,
      fix: "use 1 to 100 letters, digits, '.', '_' and '-', starting with a letter or digit (a folder name, not a path)",
    });
  }
}

const header = (what: string): string => `# ${what}, written by exp. Train it with: exp train <this folder>\n`;

export function configText(config: RunConfig): string {
  return header('Resolved run config') + stringify(config, { lineWidth: 0 });
}

export { readSweepIndex, writeSweepIndex } from './sweep-index.js';

/** What one point of a sweep needs to become a run folder anywhere (a queue job carries it). */
export interface PointSpec {
  experiment: string;
  sweep: string;
  sweepUid: string;
  file: string;
  /** sweep.yaml's text: the resolved experiment. */
  experimentText: string;
  entry: SweepIndexEntry;
  uid: string;
  configText: string;
}

/**
 * Writes (or completes) one run folder from its spec, and its sweep folder's files when they
 * are missing: what a queue worker does with a job on a machine that has not seen the sweep.
 */
export function materializePoint(runsDir: string, spec: PointSpec): string {
  const dir = sweepDirPath(runsDir, spec.experiment, spec.sweep);
  checkSweepName(spec.sweep);
  // Names, never paths, so nothing lands outside runsDir. A queue worker has checked its job (exec/trust.ts): a bad name here is a bug.
  for (const name of [spec.experiment, spec.entry.dir])
    if (!/^[A-Za-z0-9_][A-Za-z0-9._=,+-]*$/.test(name)) throw new Error(`not a folder name: ${JSON.stringify(name)}`);
  if (!existsSync(sweepPath(dir, 'experiment'))) writeFileAtomic(sweepPath(dir, 'experiment'), spec.experimentText);
  const index = readSweepIndex(dir) ?? {
    experiment: spec.experiment,
    sweep: spec.sweep,
    uid: spec.sweepUid,
    file: spec.file,
    created: new Date().toISOString(),
    points: [],
  };
  if (!index.points.some((p) => p.dir === spec.entry.dir)) {
    index.points = [...index.points, spec.entry].sort((a, b) => a.index - b.index);
    writeSweepIndex(dir, index);
  }
  const runDir = join(dir, spec.entry.dir);
  if (!existsSync(runPath(runDir, 'config'))) writeFileAtomic(runPath(runDir, 'config'), spec.configText);
  if (!existsSync(runPath(runDir, 'point'))) {
    writePoint(runDir, {
      version: 1,
      uid: spec.uid,
      key: spec.entry.key,
      name: spec.entry.name,
      index: spec.entry.index,
      params: spec.entry.params,
      experiment: spec.experiment,
      sweep: spec.sweep,
      sweep_uid: spec.sweepUid,
      created: new Date().toISOString(),
    });
  }
  return runDir;
}

/**
 * Writes the sweep folder and one folder per point. A run folder that exists keeps its files
 * and its identity; only what is missing (config.yaml, point.json) is written.
 */
export function writePlan(runsDir: string, plan: Plan, sweepId = defaultSweepId(plan)): { dir: string; index: SweepIndex } {
  checkSweepName(sweepId);
  const dir = sweepDirPath(runsDir, plan.experiment.name, sweepId);
  const previous = readSweepIndex(dir);
  const index: SweepIndex = {
    experiment: plan.experiment.name,
    sweep: sweepId,
    uid: previous?.uid ?? randomUUID(),
    file: plan.file,
    created: previous?.created ?? new Date().toISOString(),
    points: plan.points.map((p) => ({ index: p.index, key: p.key, name: p.name, params: p.params, dir: runDirName(p) })),
  };
  writeFileAtomic(sweepPath(dir, 'experiment'), `# Resolved experiment (from ${plan.file}), written by exp\n` + stringify(plan.experiment, { lineWidth: 0 }));
  for (const [i, p] of plan.points.entries()) {
    const runDir = join(dir, index.points[i]!.dir);
    if (!existsSync(runPath(runDir, 'config'))) writeFileAtomic(runPath(runDir, 'config'), configText(p.config));
    // A damaged point.json is reported, never replaced: its uid links the run to its tracking.
    if (!readPointFile(runDir)) {
      writePoint(runDir, {
        version: 1,
        uid: randomUUID(),
        key: p.key,
        name: p.name,
        index: p.index,
        params: p.params,
        experiment: index.experiment,
        sweep: sweepId,
        sweep_uid: index.uid,
        created: new Date().toISOString(),
      });
    }
  }
  writeSweepIndex(dir, index);
  return { dir, index };
}
