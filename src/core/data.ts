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
import { splitDirOf, SYNTH_LOCK } from '../store/layout.js';
import { tryLock, type Lock } from '../store/lock.js';
import { hasSavedSplit, readSplitNames, readSplitRecord, writeSplit } from '../store/split.js';

export interface Split {
  train: number[];
  val: number[];
  hash: string;
}

/** How long a point waits for another process generating the same synthetic dataset. */
const SYNTH_WAIT_MS = 30 * 60_000;

/**
 * Generates the synthetic dataset if the config asks for it and data.path has none. The points
 * of a sweep start at once and share data.path, so generation is done under a lock in that
 * folder and the CSV looked for again once it is held: otherwise each point would write the
 * images again (a reader could see a half-written JPEG, and the new mtimes change the dataset's
 * fingerprint, so the points no longer share decoded pixels or feature-cache entries).
 */
export async function ensureDataset(cfg: RunConfig, log: (s: string) => void): Promise<void> {
  const csv = join(cfg.data.path, cfg.data.csv);
  const synth = cfg.data.synth;
  if (existsSync(csv) || !synth) return;
  const lock = await synthLock(cfg.data.path);
  try {
    if (!existsSync(csv)) await generate(cfg.data.path, synth, csv, log);
  } finally {
    lock.release();
  }
}

async function synthLock(dir: string): Promise<Lock> {
  try {
    mkdirSync(dir, { recursive: true });
  } catch (e) {
    throw synthFailed(dir, e);
  }
  const lock = await tryLock(join(dir, SYNTH_LOCK), { waitMs: SYNTH_WAIT_MS, heartbeat: 'timer' });
  if (lock) return lock;
  throw new DataError({
    code: 'SYNTH_FAILED',
    message: `another process has been generating the synthetic dataset in ${dir} for over ${SYNTH_WAIT_MS / 60_000} minutes`,
    fix: `wait for it to finish, or stop it and remove ${join(dir, SYNTH_LOCK)}.*`,
  });
}

const synthFailed = (dir: string, e: unknown): DataError =>
  new DataError({
    code: 'SYNTH_FAILED',
    message: `could not generate the synthetic dataset in ${dir}: ${(e as Error).message}`,
    fix: 'check that data.path is a folder you can write, or point it at an existing dataset',
  });

async function generate(dir: string, synth: NonNullable<RunConfig['data']['synth']>, csv: string, log: (s: string) => void): Promise<void> {
  log(`data: ${csv} is missing; generating a synthetic Planet-style dataset (${synth.count} images, seed ${synth.seed}) ...\n`);
  const t0 = performance.now();
  try {
    await synthesize({ outDir: dir, count: synth.count, seed: synth.seed, size: synth.size });
  } catch (e) {
    throw synthFailed(dir, e);
  }
  log(`data: generated in ${((performance.now() - t0) / 1000).toFixed(1)} s\n`);
}

/** The split, saved in split/ on first use and reused (and checked against the data) afterwards. */
export function resolveSplit(dir: string, ds: Dataset, cfg: RunConfig): Split {
  const splitDir = splitDirOf(dir);
  // A damaged split.json is an error (store/split.ts): a new split in its place would train on other images than recorded.
  const saved = readSplitRecord(dir);
  const index = new Map(ds.names.map((n, i) => [n, i]));
  if (saved && hasSavedSplit(dir)) {
    const trainNames = readSplitNames(dir, 'train');
    const valNames = readSplitNames(dir, 'val');
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
  writeSplit(
    dir,
    { train: trainNames, val: valNames },
    {
      hash,
      fingerprint: ds.fingerprint,
      tags: ds.tags,
      train: trainNames.length,
      val: valNames.length,
      test_size: cfg.data.split.test_size,
      seed: cfg.data.split.seed,
    },
  );
  return { ...s, hash };
}
