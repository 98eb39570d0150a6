/**
 * A run's data: the synthetic dataset generated on first use when the config asks for it,
 * the dataset loaded through the decoded cache, and the split saved in the run folder on
 * first use and reused (and checked) afterwards, so a resume or a reproduction trains on
 * exactly the same images.
 */
import { existsSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { DataError } from '../errors.js';
import { synthesize } from '../data/synth.js';
import { splitHash, splitIndices } from '../data/split.js';
import type { Dataset } from '../data/planet.js';
import type { RunConfig } from '../config/normalise.js';
import { RUN_FILES } from '../store/layout.js';
import { readFileBounded, readRecordJson, writeFileAtomic, writeJsonAtomic } from '../util/fsx.js';
import { StoreError } from '../errors.js';

export interface Split {
  train: number[];
  val: number[];
  hash: string;
}

/** Generates the synthetic dataset if the config asks for it and data.path has none. */
export async function ensureDataset(cfg: RunConfig, log: (s: string) => void): Promise<void> {
  const csv = join(cfg.data.path, cfg.data.csv);
  if (existsSync(csv) || !cfg.data.synth) return;
  log(`data: ${csv} is missing; generating a synthetic Planet-style dataset (${cfg.data.synth.count} images, seed ${cfg.data.synth.seed}) ...\n`);
  const t0 = performance.now();
  try {
    await synthesize({ outDir: cfg.data.path, count: cfg.data.synth.count, seed: cfg.data.synth.seed, size: cfg.data.synth.size });
  } catch (e) {
    throw new DataError({
      code: 'SYNTH_FAILED',
      message: `could not generate the synthetic dataset in ${cfg.data.path}: ${(e as Error).message}`,
      fix: 'check that data.path is a folder you can write, or point it at an existing dataset',
    });
  }
  log(`data: generated in ${((performance.now() - t0) / 1000).toFixed(1)} s\n`);
}

/**
 * split/split.json, or undefined when the run has not saved a split yet. A damaged one is an
 * error: making a new split in its place would score (or train) on other images than recorded.
 */
function readSavedSplit(splitDir: string): { hash: string } | undefined {
  const file = join(splitDir, 'split.json');
  const fix = 'restore the split folder from a copy, or start a new run folder (exp run FILE --force) to make a new split';
  const raw = readRecordJson(file, 'split.json', fix, 1 << 20) as { hash?: unknown } | null | undefined;
  if (raw === undefined) return undefined;
  if (typeof raw !== 'object' || raw === null || typeof raw.hash !== 'string')
    throw new StoreError({ code: 'RUN_FILE_CORRUPT', message: `${file} is damaged: it has no split hash`, file, fix, exit: 'failed' });
  return { hash: raw.hash };
}

/** The split, saved in split/ on first use and reused (and checked against the data) afterwards. */
export function resolveSplit(dir: string, ds: Dataset, cfg: RunConfig): Split {
  const splitDir = join(dir, RUN_FILES.split);
  const saved = readSavedSplit(splitDir);
  const index = new Map(ds.names.map((n, i) => [n, i]));
  if (saved && existsSync(join(splitDir, 'train.txt')) && existsSync(join(splitDir, 'val.txt'))) {
    // Bounded: Planet's 40,479 names are 600 KB.
    const read = (f: string): string[] =>
      readFileBounded(join(splitDir, f), 256 * 2 ** 20, `split file ${f}`)
        .toString('utf8')
        .split('\n')
        .filter(Boolean);
    const trainNames = read('train.txt');
    const valNames = read('val.txt');
    const missing = [...trainNames, ...valNames].filter((n) => !index.has(n));
    if (missing.length > 0) {
      throw new DataError({
        code: 'SPLIT_MISMATCH',
        message: `the saved split in ${splitDir} names ${missing.length} images that are not in the dataset now (e.g. ${missing.slice(0, 3).join(', ')}): the data changed since this run started`,
        fix: 'restore the data, or start a new run folder (exp run FILE --force) to make a new split',
        exit: 'failed',
      });
    }
    return { train: trainNames.map((n) => index.get(n)!), val: valNames.map((n) => index.get(n)!), hash: saved.hash };
  }
  let s: { train: number[]; val: number[] };
  try {
    s = splitIndices(ds.names.length, cfg.data.split.test_size, cfg.data.split.seed);
  } catch (e) {
    throw new DataError({
      code: 'SPLIT_TOO_SMALL',
      message: (e as Error).message,
      fix: 'use more images (data.limit) or another data.split.test_size',
      exit: 'failed',
    });
  }
  const trainNames = s.train.map((i) => ds.names[i]!);
  const valNames = s.val.map((i) => ds.names[i]!);
  const hash = splitHash(trainNames, valNames);
  mkdirSync(splitDir, { recursive: true });
  writeFileAtomic(join(splitDir, 'train.txt'), trainNames.join('\n') + '\n');
  writeFileAtomic(join(splitDir, 'val.txt'), valNames.join('\n') + '\n');
  writeJsonAtomic(join(splitDir, 'split.json'), {
    hash,
    fingerprint: ds.fingerprint,
    tags: ds.tags,
    train: trainNames.length,
    val: valNames.length,
    test_size: cfg.data.split.test_size,
    seed: cfg.data.split.seed,
  });
  return { ...s, hash };
}
