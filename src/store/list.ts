/**
 * Finding run folders in the run store. A run folder is a folder holding config.yaml; the
 * runs folder holds experiments, which hold sweeps, which hold runs. Listing reads each
 * sweep's index.json once, so it grows linearly with the number of runs.
 */
import { existsSync, readdirSync } from 'node:fs';
import { basename, join } from 'node:path';
import { RUN_FILES } from './layout.js';
import { readSweepIndex } from './sweep-index.js';
import type { SweepIndex, SweepIndexEntry } from './types.js';

const subdirs = (dir: string): string[] => {
  try {
    return readdirSync(dir, { withFileTypes: true })
      .filter((d) => d.isDirectory() && !d.name.startsWith('.'))
      .map((d) => d.name)
      .sort();
  } catch {
    return [];
  }
};

/** Every run folder under `root` (a runs, experiment, sweep or run folder), at most `depth` levels down, sorted. */
export function findRunDirs(root: string, depth = 3): string[] {
  if (existsSync(join(root, RUN_FILES.config))) return [root];
  if (depth === 0) return [];
  return subdirs(root).flatMap((n) => findRunDirs(join(root, n), depth - 1));
}

/** A run folder found by listing, with its sweep's index entry (when the index names it). */
export interface FoundRun {
  dir: string;
  sweepDir: string;
  index: SweepIndex | undefined;
  entry: SweepIndexEntry | undefined;
}

/** Every run folder under `root`, each with its sweep's index read once per sweep. */
export function listRunFolders(root: string): FoundRun[] {
  const bySweep = new Map<string, { index: SweepIndex | undefined; entries: Map<string, SweepIndexEntry> }>();
  return findRunDirs(root).map((dir) => {
    const sweepDir = join(dir, '..');
    let s = bySweep.get(sweepDir);
    if (!s) {
      const index = readSweepIndex(sweepDir);
      s = { index, entries: new Map((index?.points ?? []).map((p) => [p.dir, p])) };
      bySweep.set(sweepDir, s);
    }
    return { dir, sweepDir, index: s.index, entry: s.entries.get(basename(dir)) };
  });
}
