/**
 * A run folder's thresholds.json: per-tag thresholds tuned on the validation predictions after
 * training (train/final.ts writes it; exp predict, evaluate and exports read it). Checked when
 * read: a damaged file, or one tuned for other tags than the run's tags.txt, is RUN_FILE_CORRUPT,
 * since scoring silently at metrics.threshold instead would report another model's F-beta.
 */
import { writeJsonAtomic } from '../util/fsx.js';
import { checkRecord, readCheckedJson, type Fields } from './check.js';
import { runPath, RUN_FILES } from './layout.js';
import type { ThresholdsFile } from './types.js';
import { StoreError } from '../errors.js';

const FIELDS: Fields = { tags: 'strings', thresholds: 'numbers', version: 'number?', beta: 'number?', tta: 'boolean?' };

const fixFor = (file: string): string =>
  `pass --thresholds 0.5 (one probability for every tag) to score without them, or delete ${file} to use the run's metrics.threshold`;

const corrupt = (file: string, problem: string): StoreError =>
  new StoreError({ code: 'RUN_FILE_CORRUPT', message: `${file} is damaged: ${problem}`, file, fix: fixFor(file), exit: 'failed' });

/** The run's tuned thresholds for `tags` (its tags.txt), or undefined when it has none. */
export function readThresholds(runDir: string, tags: readonly string[]): ThresholdsFile | undefined {
  const file = runPath(runDir, 'thresholds');
  const raw = readCheckedJson<ThresholdsFile>(file, RUN_FILES.thresholds, FIELDS, fixFor(file), 1 << 20);
  if (raw === undefined) return undefined;
  const bad = raw.thresholds.findIndex((x) => x < 0 || x > 1);
  if (bad >= 0) throw corrupt(file, `its 'thresholds' has ${raw.thresholds[bad]} at ${bad}, not a probability between 0 and 1`);
  if (raw.tags.length !== tags.length || raw.thresholds.length !== tags.length || raw.tags.some((t, i) => t !== tags[i]))
    throw corrupt(file, `it was tuned for other tags (${raw.tags.length}) than the run's tags.txt has (${tags.length})`);
  return raw;
}

/** Writes the run's tuned thresholds (checked as a reader would, so exp never writes a file it would refuse). */
export function writeThresholds(runDir: string, t: ThresholdsFile): void {
  const file = runPath(runDir, 'thresholds');
  writeJsonAtomic(file, checkRecord<ThresholdsFile>(t, file, FIELDS, fixFor(file)));
}
