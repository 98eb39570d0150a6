/**
 * A run folder's saved split (split/: train.txt, val.txt, split.json): written once on first
 * training, then reused by resume, reproduce, evaluate and ensemble. split.json is checked
 * when read: a damaged one is an error, since making a new split in its place would score (or
 * train) on other images than recorded.
 */
import { existsSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { readFileBounded, writeFileAtomic, writeJsonAtomic } from '../util/fsx.js';
import { readCheckedJson, type Fields } from './check.js';
import { splitDirOf, splitPath, SPLIT_FILES, type SplitFile } from './layout.js';

/** split.json: what the split is (its hash), what it was made from and how. */
export interface SplitRecord {
  hash: string;
  /** The dataset's fingerprint when the split was made. */
  fingerprint?: string;
  tags?: string[];
  train?: number;
  val?: number;
  test_size?: number;
  seed?: number;
}

const FIELDS: Fields = { hash: 'string', fingerprint: 'string?', tags: 'strings?', train: 'number?', val: 'number?', test_size: 'number?', seed: 'number?' };
const SPLIT_FIX = 'restore the split folder from a copy, or start a new run folder (exp run FILE --force) to make a new split';
/** Planet's 40,479 names are 600 KB. */
const MAX_NAMES_BYTES = 256 * 2 ** 20;

/** split/split.json, or undefined when the run has not saved a split yet. */
export const readSplitRecord = (runDir: string): SplitRecord | undefined =>
  readCheckedJson<SplitRecord>(splitPath(runDir, 'record'), SPLIT_FILES.record, FIELDS, SPLIT_FIX, 1 << 20);

/** Whether the run saved a whole split: its record and both name lists. */
export const hasSavedSplit = (runDir: string): boolean =>
  existsSync(splitPath(runDir, 'record')) && existsSync(splitPath(runDir, 'train')) && existsSync(splitPath(runDir, 'val'));

/** The image names of one side of the saved split, read bounded. */
export const readSplitNames = (runDir: string, side: 'train' | 'val'): string[] =>
  readFileBounded(splitPath(runDir, side), MAX_NAMES_BYTES, `split file ${SPLIT_FILES[side]}`).toString('utf8').split('\n').filter(Boolean);

/** Saves a split: the name lists first, the record last, so a record always means a whole split. */
export function writeSplit(runDir: string, names: { train: readonly string[]; val: readonly string[] }, record: SplitRecord): void {
  mkdirSync(splitDirOf(runDir), { recursive: true });
  writeFileAtomic(splitPath(runDir, 'train'), names.train.join('\n') + '\n');
  writeFileAtomic(splitPath(runDir, 'val'), names.val.join('\n') + '\n');
  writeJsonAtomic(splitPath(runDir, 'record'), record);
}

/** Copies a saved split folder byte for byte into a run folder (a reproduction trains on the original's images), the record last. */
export function copySplit(fromSplitDir: string, toRunDir: string): void {
  for (const f of ['train', 'val', 'record'] as const satisfies readonly SplitFile[])
    writeFileAtomic(splitPath(toRunDir, f), readFileBounded(join(fromSplitDir, SPLIT_FILES[f]), MAX_NAMES_BYTES, `split file ${SPLIT_FILES[f]}`));
}
