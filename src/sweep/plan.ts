/**
 * The pure front half of `exp`: file text -> validated, normalised, expanded plan.
 * load -> overrides -> validate -> check sweep -> normalise -> expand. Problems from every
 * stage that can run are collected and returned together; nothing here writes or exits.
 */
import { readFileSync } from 'node:fs';
import { loadExperiment, pathId, type ReadText, type SourceMap } from '../config/load.js';
import { applyOverrides, parseOverrides } from '../config/overrides.js';
import type { Problem } from '../config/problem.js';
import { validateDocument, locate } from '../config/validate.js';
import { normalise } from '../config/normalise.js';
import type { ExperimentFile, ResolvedExperiment } from '../config/types.gen.js';
import { checkSweep } from './check.js';
import { expand, pointCount, type SweepPoint } from './expand.js';
import { getPath, isPlainObject, setPath } from '../util/object.js';
import { dirname, isAbsolute, resolve } from 'node:path';

export interface Plan {
  file: string;
  experiment: ResolvedExperiment;
  points: SweepPoint[];
  excluded: number;
  duplicates: number;
}

export interface PlanResult {
  plan?: Plan;
  problems: Problem[];
  /** Text of every file read, for rendering problems. */
  texts: Map<string, string>;
  /** Where each value was written, for problems found later (e.g. by a preflight check). */
  sources: SourceMap;
}

export const readTextFromDisk: ReadText = (path) => {
  try { return readFileSync(path, 'utf8'); } catch { return undefined; }
};

export interface PlanOptions {
  set?: readonly string[];
  readText?: ReadText;
}

/** Loads, checks and expands an experiment file; every problem found on the way is returned, with its position. */
export function planExperiment(file: string, options: PlanOptions = {}): PlanResult {
  const readText = options.readText ?? readTextFromDisk;
  const loaded = loadExperiment(file, readText);
  const { overrides, problems: overrideProblems } = parseOverrides(options.set ?? []);
  const problems = [...loaded.problems, ...overrideProblems];
  const absFile = [...loaded.texts.keys()][0] ?? file;
  if (loaded.value === undefined) return { problems, texts: loaded.texts, sources: loaded.sources };
  if (!isPlainObject(loaded.value)) {
    problems.push({ code: 'TYPE', message: 'an experiment file must be a mapping of keys (name:, data:, ...)', file: absFile, path: '', line: 1, col: 1 });
    return { problems, texts: loaded.texts, sources: loaded.sources };
  }
  const doc = loaded.value;
  applyOverrides(doc, loaded.sources, overrides);
  problems.push(...validateDocument(doc, loaded.sources, absFile));
  const written = doc as unknown as ExperimentFile;
  // The sweep's own checks need only a schema-valid sweep section, so they run even when
  // other sections have problems: the user sees everything at once.
  if (!problems.some((p) => p.path === 'sweep' || p.path.startsWith('sweep.'))) problems.push(...checkSweep(written.sweep, loaded.sources));
  if (problems.length > 0) return { problems, texts: loaded.texts, sources: loaded.sources };

  anchorPaths(doc, loaded.sources);
  const experiment = normalise(written, absFile);
  const maxRuns = experiment.sweep?.max_runs ?? 256;
  const count = pointCount(written.sweep);
  if (count > maxRuns) {
    const loc = locate(loaded.sources, ['sweep', 'max_runs'], true);
    problems.push({ code: 'SWEEP_TOO_LARGE', message: `the sweep has ${count} points, more than sweep.max_runs (${maxRuns}); narrow the sweep, add exclude rules, or raise sweep.max_runs`, path: 'sweep', ...loc });
    return { problems, texts: loaded.texts, sources: loaded.sources };
  }
  const { points, excluded, duplicates } = expand(written, absFile);
  if (points.length === 0) {
    const loc = locate(loaded.sources, ['sweep', 'exclude']);
    problems.push({ code: 'SWEEP_EMPTY_RESULT', message: `every point of the sweep is excluded; loosen sweep.exclude`, path: 'sweep.exclude', ...loc });
    return { problems, texts: loaded.texts, sources: loaded.sources };
  }
  return { plan: { file: absFile, experiment, points, excluded, duplicates }, problems, texts: loaded.texts, sources: loaded.sources };
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
