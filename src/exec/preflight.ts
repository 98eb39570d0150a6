/**
 * What every point of a plan needs before it can train, checked before anything is written
 * (by `exp run`, and by `exp validate --preflight`): the data folder with its label CSV (which
 * must parse) and image folder, unless data.synth generates them; the weights file, found and
 * verified (size and MD5); the backend asked for, installed. Each problem points at the
 * setting in the experiment file that named the missing thing, like `exp validate` does.
 * Light: nothing here loads TensorFlow.js.
 */
import { existsSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { locate } from '../config/validate.js';
import type { SourceMap } from '../config/load.js';
import type { Problem, ProblemCode } from '../config/problem.js';
import type { RunConfig } from '../config/normalise.js';
import type { Plan } from '../sweep/plan.js';
import { parseLabelCsv } from '../data/csv.js';
import { MAX_CSV_BYTES } from '../data/csv.js';
import { resolveWeights } from '../model/weights.js';
import { backendMissing } from '../backend/available.js';
import { BACKEND_FIX, type BackendName } from '../backend/types.js';
import { ExpError } from '../errors.js';
import { readFileBounded } from '../util/fsx.js';

const isDir = (p: string): boolean => {
  try {
    return statSync(p).isDirectory();
  } catch {
    return false;
  }
};

/** Every distinct value of `pick` over the plan's points, with the first point that has it. */
function distinct<T>(plan: Plan, pick: (c: RunConfig) => T, key: (v: T) => string = (v) => JSON.stringify(v)): T[] {
  const seen = new Map<string, T>();
  for (const p of plan.points) {
    const v = pick(p.config);
    if (!seen.has(key(v))) seen.set(key(v), v);
  }
  return [...seen.values()];
}

export async function preflight(plan: Plan, sources: SourceMap, env: NodeJS.ProcessEnv = process.env): Promise<Problem[]> {
  const problems: Problem[] = [];
  const add = (code: ProblemCode, at: string[], message: string): void => {
    problems.push({ code, message, path: at.join('.'), ...locate(sources, at, true), file: locate(sources, at, true).file || plan.file });
  };
  for (const data of distinct(plan, (c) => c.data)) {
    if (data.synth) continue; // generated into data.path on first use
    const csv = join(data.path, data.csv);
    const images = join(data.path, data.images);
    if (!isDir(data.path)) {
      add(
        'DATA_NOT_FOUND',
        ['data', 'path'],
        `data folder ${data.path} does not exist; fix data.path (relative to the experiment file), or generate a dataset there with: exp data synth --out ${data.path}`,
      );
      continue;
    }
    if (!existsSync(csv)) {
      add('DATA_NOT_FOUND', ['data', 'csv'], `label CSV ${csv} does not exist; fix data.path or data.csv (Kaggle's file is train_v2.csv)`);
      continue;
    }
    try {
      const parsed = parseLabelCsv(readFileBounded(csv, MAX_CSV_BYTES, 'label CSV').toString('utf8'), csv);
      const fatal = parsed.problems.find((p) => p.severity === 'error' && p.code !== 'DUPLICATE_NAME');
      if (fatal) add('DATA_INVALID', ['data', 'csv'], `${csv}:${fatal.line}: ${fatal.message} [${fatal.code}]`);
      else if (parsed.rows.length === 0) add('DATA_INVALID', ['data', 'csv'], `${csv} has no image rows`);
    } catch (e) {
      add('DATA_INVALID', ['data', 'csv'], e instanceof ExpError ? e.message : `cannot read ${csv}: ${(e as Error).message}`);
    }
    if (!isDir(images)) add('DATA_NOT_FOUND', ['data', 'images'], `image folder ${images} does not exist; fix data.images (relative to data.path)`);
  }
  for (const weights of distinct(plan, (c) => c.model.weights)) {
    if (weights === 'none') continue;
    try {
      await resolveWeights(weights, env);
    } catch (e) {
      if (!(e instanceof ExpError)) throw e;
      add(e.code === 'WEIGHTS_CHECKSUM' ? 'WEIGHTS_CHECKSUM' : 'WEIGHTS_NOT_FOUND', ['model', 'weights'], e.message.replace(/\n+/g, ' ').replace(/\s+/g, ' '));
    }
  }
  for (const backend of distinct(plan, (c) => c.backend)) {
    const why = backendMissing(backend);
    if (why)
      add(
        'BACKEND_UNAVAILABLE',
        ['backend'],
        `backend '${backend}' is not available here: ${why}; to get it: ${BACKEND_FIX[backend as BackendName]}; or use backend: auto`,
      );
  }
  return problems;
}
