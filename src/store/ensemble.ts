/**
 * An ensemble folder (made by exp ensemble): its manifest ensemble.json names the member run
 * folders (relative to it), the tags and the thresholds tuned on the members' average. The
 * manifest is what makes a folder an ensemble; it is checked when read.
 */
import { existsSync } from 'node:fs';
import { StoreError } from '../errors.js';
import { readRecordJson, writeJsonAtomic } from '../util/fsx.js';
import { checkRecord, type Fields } from './check.js';
import { ensembleManifestPath, ENSEMBLE_FILES } from './layout.js';

/** ensemble.json: the runs an ensemble averages, and what was measured of it. */
export interface EnsembleFile {
  version: 1;
  /** The run folders averaged, relative to the ensemble folder. */
  members: string[];
  tags: string[];
  thresholds: number[];
  split_hash: string;
  image_size: number;
  preprocessing: string;
  beta: number;
  /** Whether the scores below averaged the 8 dihedral views (exp predict/evaluate use --tta either way). */
  tta: boolean;
  /** On the shared validation split: each member (at metrics.threshold and its own tuned thresholds) and the average. */
  scores: {
    members: { dir: string; val_fbeta: number; val_fbeta_tuned: number }[];
    val_fbeta: number;
    val_fbeta_tuned: number;
    held_out: { at_threshold: number; tuned: number };
    images: number;
  };
  created: string;
}

const FIELDS: Fields = {
  members: 'strings',
  tags: 'strings',
  thresholds: 'numbers',
  version: 'number?',
  split_hash: 'string?',
  image_size: 'number?',
  preprocessing: 'string?',
  beta: 'number?',
  tta: 'boolean?',
  scores: 'object?',
  created: 'string?',
};
const MANIFEST_FIX = 'make it again with exp ensemble';

/** Whether `dir` is an ensemble folder (it has a manifest). */
export const isEnsembleFolder = (dir: string): boolean => existsSync(ensembleManifestPath(dir));

/** The folder's ensemble.json, read bounded and checked for the shape exp ensemble writes. */
export function readEnsembleManifest(dir: string): EnsembleFile {
  const file = ensembleManifestPath(dir);
  const raw = readRecordJson(file, ENSEMBLE_FILES.manifest, MANIFEST_FIX, 16 * 2 ** 20);
  if (raw === undefined)
    throw new StoreError({ code: 'NOT_A_REGULAR_FILE', message: `${ENSEMBLE_FILES.manifest} ${file} does not exist`, file, fix: 'check the path' });
  const m = checkRecord<EnsembleFile>(raw, file, FIELDS, MANIFEST_FIX);
  if (m.members.length === 0 || m.tags.length === 0)
    throw new StoreError({
      code: 'RUN_FILE_CORRUPT',
      message: `${file} is damaged: it names no ${m.members.length === 0 ? 'members' : 'tags'}`,
      file,
      fix: MANIFEST_FIX,
      exit: 'failed',
    });
  return m;
}

export const writeEnsembleManifest = (dir: string, m: EnsembleFile): void => writeJsonAtomic(ensembleManifestPath(dir), m);
