/**
 * The pure front half of `exp`: file text -> validated, normalised, expanded plan.
 * load -> overrides -> validate -> check sweep -> normalise -> expand. Problems from every
 * stage that can run are collected and returned together; nothing here writes or exits.
 */
import { readTextIfPresent } from '../util/fsx.js';
import { loadExperiment, pathId, type ReadText, type SourceMap } from '../config/load.js';
import { applyOverrides, parseOverrides } from '../config/overrides.js';
import { applyUserDefaults, type UserConfigResult } from '../config/user.js';
import type { Problem } from '../config/problem.js';
import { validateDocument, locate } from '../config/validate.js';
import { normalise } from '../config/normalise.js';
import type { ExperimentFile, ResolvedExperiment } from '../config/types.gen.js';
import { checkSweep } from './check.js';
import { expand, pointCount, type SweepPoint } from './expand.js';
import { getPath, isPlainObject, setPath } from '../util/object.js';
import { dirname, isAbsolute, relative, resolve } from 'node:path';

export interface Plan {
  file: string;
  experiment: ResolvedExperiment;
  points: SweepPoint[];
  excluded: number;
  duplicates: number;
  /** The document as validated: an adaptive study (sweep.tpe) makes its later points from it (sweep/expand's pointOf). */
  written: ExperimentFile;
  /** The user config file whose launcher settings were merged in, when there was one with a launcher section. */
  userConfig?: string;
}

export interface PlanResult {
  plan?: Plan;
  problems: Problem[];
  /** Text of every file read, for rendering problems. */
  texts: Map<string, string>;
  /** Where each value was written, for problems found later (e.g. by a preflight check). */
  sources: SourceMap;
}

/** Experiment files are small; a bigger one is not an experiment file (and is never read whole). */
export const MAX_EXPERIMENT_BYTES = 1 << 20;

/**
 * Reads an experiment file: undefined when it does not exist; a folder, a FIFO, a device or
 * a file over 1 MB is refused with a coded error (loadExperiment reports it where it was named).
 */
export const readTextFromDisk: ReadText = (path) => readTextIfPresent(path, MAX_EXPERIMENT_BYTES, 'experiment file');

export interface PlanOptions {
  set?: readonly string[];
  readText?: ReadText;
  /** The user config, as config/user.ts loaded it: its launcher settings go under the file's; its problems are reported with the file's. None: no user defaults. */
  user?: UserConfigResult;
}

/** Loads, checks and expands an experiment file; every problem found on the way is returned, with its position. */
export function planExperiment(file: string, options: PlanOptions = {}): PlanResult {
  const readText = options.readText ?? readTextFromDisk;
  const loaded = loadExperiment(file, readText);
  const { overrides, problems: overrideProblems } = parseOverrides(options.set ?? []);
  const problems = [...loaded.problems, ...(options.user?.problems ?? []), ...overrideProblems];
  const absFile = [...loaded.texts.keys()][0] ?? file;
  for (const [f, text] of options.user?.texts ?? []) loaded.texts.set(f, text);
  if (loaded.value === undefined) return { problems, texts: loaded.texts, sources: loaded.sources };
  if (!isPlainObject(loaded.value)) {
    problems.push({ code: 'TYPE', message: 'an experiment file must be a mapping of keys (name:, data:, ...)', file: absFile, path: '', line: 1, col: 1 });
    return { problems, texts: loaded.texts, sources: loaded.sources };
  }
  const doc = loaded.value;
  const user = options.user?.config;
  applyUserDefaults(doc, loaded.sources, user);
  applyOverrides(doc, loaded.sources, overrides);
  problems.push(...validateDocument(doc, loaded.sources, absFile));
  const written = doc as unknown as ExperimentFile;
  // The sweep's own checks need only a schema-valid sweep section, so they run even when
  // other sections have problems: the user sees everything at once.
  if (!problems.some((p) => p.path === 'sweep' || p.path.startsWith('sweep.'))) problems.push(...checkSweep(written.sweep, loaded.sources));
  problems.push(...checkDataPaths(doc, loaded.sources));
  if (problems.length > 0) return { problems, texts: loaded.texts, sources: loaded.sources };

  anchorPaths(doc, loaded.sources);
  const experiment = normalise(written, absFile);
  const maxRuns = experiment.sweep?.max_runs ?? 256;
  const count = pointCount(written.sweep);
  if (count > maxRuns) {
    const loc = locate(loaded.sources, ['sweep', 'max_runs'], true);
    problems.push({
      code: 'SWEEP_TOO_LARGE',
      message: `the sweep has ${count} points, more than sweep.max_runs (${maxRuns}); narrow the sweep, add exclude rules, or raise sweep.max_runs`,
      path: 'sweep',
      ...loc,
    });
    return { problems, texts: loaded.texts, sources: loaded.sources };
  }
  const { points, excluded, duplicates } = expand(written, absFile);
  if (points.length === 0) {
    const loc = locate(loaded.sources, ['sweep', 'exclude']);
    problems.push({ code: 'SWEEP_EMPTY_RESULT', message: `every point of the sweep is excluded; loosen sweep.exclude`, path: 'sweep.exclude', ...loc });
    return { problems, texts: loaded.texts, sources: loaded.sources };
  }
  const plan: Plan = { file: absFile, experiment, points, excluded, duplicates, written, ...(user?.launcher ? { userConfig: user.file } : {}) };
  return { plan, problems, texts: loaded.texts, sources: loaded.sources };
}

/**
 * Relative paths are relative to the file that wrote them: a `data.path` from an `extends`
 * base resolves against the base file's folder, and one from `--set` against the working
 * directory. (normalise resolves whatever is still relative against the top file.)
 */
function anchorPaths(doc: Record<string, unknown>, sources: SourceMap): void {
  for (const dotted of ['data.path', 'model.weights']) {
    const value = getPath(doc, dotted);
    const loc = sources.get(pathId(dotted.split('.')));
    if (typeof value !== 'string' || !loc || isAbsolute(value) || value === 'imagenet' || value === 'none') continue;
    setPath(doc, dotted, loc.file.startsWith('--set') ? resolve(value) : resolve(dirname(loc.file), value));
  }
}

/**
 * data.csv and data.images are relative to data.path and must stay inside it (an absolute
 * path is taken as written): `data.csv: ../../../etc/shadow` is refused here, with its place,
 * before anything reads it. Swept values are checked too.
 */
function checkDataPaths(doc: Record<string, unknown>, sources: SourceMap): Problem[] {
  const problems: Problem[] = [];
  const check = (value: unknown, at: (string | number)[], key: string): void => {
    if (typeof value !== 'string' || isAbsolute(value)) return;
    const back = relative('/data', resolve('/data', value));
    if (back === '..' || back.startsWith('../')) {
      problems.push({
        code: 'PATH_ESCAPES',
        message: `${key} '${value}' points outside data.path; give it relative to data.path and inside it, or as an absolute path`,
        path: at.join('.'),
        ...locate(sources, at),
      });
    }
  };
  for (const key of ['csv', 'images']) {
    check(getPath(doc, `data.${key}`), ['data', key], `data.${key}`);
    const sweep = isPlainObject(doc.sweep) ? doc.sweep : {};
    const grid = isPlainObject(sweep.grid) ? sweep.grid : {};
    const values = grid[`data.${key}`];
    if (Array.isArray(values)) values.forEach((v, i) => check(v, ['sweep', 'grid', `data.${key}`, i], `data.${key}`));
  }
  return problems;
}
