/**
 * The local run store: the run folder is the unit of work.
 *
 *   <runs>/<experiment>/<sweep>/sweep.yaml      resolved experiment, sweep section included
 *   <runs>/<experiment>/<sweep>/index.json      the points: key, name, params, folder
 *   <runs>/<experiment>/<sweep>/<run>/config.yaml  one resolved run config
 *
 * Everything a run needs is in its folder, so local runs, resume and reproduce all reduce
 * to "train this folder". Every file is written atomically.
 */
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { stringify, parse } from 'yaml';
import type { Plan } from '../sweep/plan.js';
import type { SweepPoint } from '../sweep/expand.js';
import { hashOf } from '../sweep/key.js';
import type { RunConfig } from '../config/normalise.js';
import { readJson, writeFileAtomic, writeJsonAtomic } from '../util/fsx.js';

export interface SweepIndexEntry {
  index: number;
  key: string;
  name: string;
  params: Record<string, unknown>;
  /** Folder name under the sweep folder. */
  dir: string;
}

export interface SweepIndex {
  experiment: string;
  sweep: string;
  file: string;
  created: string;
  points: SweepIndexEntry[];
}

export const DEFAULT_RUNS_DIR = 'runs';

/** A sweep id that is stable for the same resolved experiment, so re-running resumes it. */
export function defaultSweepId(plan: Plan): string {
  const { description: _d, tracking: _t, ...rest } = plan.experiment;
  return `sweep-${hashOf(rest, 8)}`;
}

export const runDirName = (p: Pick<SweepPoint, 'name' | 'key'>): string => `${p.name}-${p.key.slice(0, 8)}`;

export function sweepDir(runsDir: string, experiment: string, sweep: string): string {
  return resolve(runsDir, experiment, sweep);
}

const header = (what: string): string => `# ${what}, written by exp. Train it with: exp train <this folder>\n`;

export function configText(config: RunConfig): string {
  return header('Resolved run config') + stringify(config, { lineWidth: 0 });
}

/**
 * Writes the sweep folder and one folder per point. Existing run folders keep their files
 * (they may hold finished work); only a missing config.yaml is written.
 */
export function writePlan(runsDir: string, plan: Plan, sweepId = defaultSweepId(plan)): { dir: string; index: SweepIndex } {
  const dir = sweepDir(runsDir, plan.experiment.name, sweepId);
  const previous = readJson<SweepIndex>(join(dir, 'index.json'));
  const index: SweepIndex = {
    experiment: plan.experiment.name,
    sweep: sweepId,
    file: plan.file,
    created: previous?.created ?? new Date().toISOString(),
    points: plan.points.map((p) => ({ index: p.index, key: p.key, name: p.name, params: p.params, dir: runDirName(p) })),
  };
  writeFileAtomic(join(dir, 'sweep.yaml'), `# Resolved experiment (from ${plan.file}), written by exp\n` + stringify(plan.experiment, { lineWidth: 0 }));
  for (const p of plan.points) {
    const cfgPath = join(dir, runDirName(p), 'config.yaml');
    if (!existsSync(cfgPath)) writeFileAtomic(cfgPath, configText(p.config));
  }
  writeJsonAtomic(join(dir, 'index.json'), index);
  return { dir, index };
}

/** Reads a run folder's resolved config. */
export function readRunConfig(runDir: string): RunConfig {
  return parse(readFileSync(join(runDir, 'config.yaml'), 'utf8')) as RunConfig;
}

/** Every run folder (a folder holding config.yaml) under `root`, at most three levels down. */
export function findRunDirs(root: string, depth = 3): string[] {
  if (!existsSync(root)) return [];
  if (existsSync(join(root, 'config.yaml'))) return [root];
  if (depth === 0) return [];
  return readdirSync(root)
    .filter((n) => !n.startsWith('.'))
    .map((n) => join(root, n))
    .filter((p) => statSync(p).isDirectory())
    .sort()
    .flatMap((p) => findRunDirs(p, depth - 1));
}
