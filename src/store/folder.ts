/**
 * The run, sweep and ensemble folders as objects: one place that knows where each file of a
 * folder is and reads or writes it, checked (store/check.ts), bounded and regular-file-only
 * (util/fsx.ts). They are thin: each method is the store function of the same name, so callers
 * that hold a path can keep calling those, and callers that hold a folder need no file name.
 */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import type { RunConfig } from '../config/normalise.js';
import { readEnsembleManifest, writeEnsembleManifest, type EnsembleFile } from './ensemble.js';
import {
  checkpointDir,
  checkpointStatePath,
  ensembleManifestPath,
  runPath,
  splitDirOf,
  sweepDirOf,
  sweepPath,
  type RunFile,
  type SweepFile,
} from './layout.js';
import { readMetrics, readPoint, readRunConfig, readRunConfigText, readRunRecord, readSummary, writeMetrics, writeRunRecord, writeSummary } from './run.js';
import { hasSavedSplit, readSplitNames, readSplitRecord, writeSplit, type SplitRecord } from './split.js';
import { readSweepIndex, writeSweepIndex } from './sweep-index.js';
import { readTags, writeTags } from './tags.js';
import { readThresholds, writeThresholds } from './thresholds.js';
import type { EpochLine, PointMeta, RunRecord, RunSummary, SweepIndex, ThresholdsFile } from './types.js';

/** A run folder: the unit of work. */
export class RunFolder {
  constructor(readonly dir: string) {}

  path(file: RunFile): string {
    return runPath(this.dir, file);
  }
  has(file: RunFile): boolean {
    return existsSync(this.path(file));
  }
  get sweep(): SweepFolder {
    return new SweepFolder(sweepDirOf(this.dir));
  }

  config(): RunConfig {
    return readRunConfig(this.dir);
  }
  /** config.yaml as written, unparsed. */
  configText(): string {
    return readRunConfigText(this.dir);
  }
  point(): PointMeta {
    return readPoint(this.dir);
  }
  record(): RunRecord | undefined {
    return readRunRecord(this.dir);
  }
  writeRecord(rec: RunRecord): void {
    writeRunRecord(this.dir, rec);
  }
  summary(): RunSummary | undefined {
    return readSummary(this.dir);
  }
  writeSummary(s: RunSummary): void {
    writeSummary(this.dir, s);
  }
  metrics(): EpochLine[] {
    return readMetrics(this.dir);
  }
  writeMetrics(lines: readonly EpochLine[]): void {
    writeMetrics(this.dir, lines);
  }

  /** The tag vocabulary training used (tags.txt), or undefined before the run has trained. */
  tags(): string[] | undefined {
    return readTags(this.dir);
  }
  writeTags(tags: readonly string[]): void {
    writeTags(this.dir, tags);
  }
  /** The thresholds tuned for `tags` (thresholds.json), or undefined when the run has none. */
  thresholds(tags: readonly string[]): ThresholdsFile | undefined {
    return readThresholds(this.dir, tags);
  }
  writeThresholds(t: ThresholdsFile): void {
    writeThresholds(this.dir, t);
  }

  get splitDir(): string {
    return splitDirOf(this.dir);
  }
  split(): SplitRecord | undefined {
    return readSplitRecord(this.dir);
  }
  hasSplit(): boolean {
    return hasSavedSplit(this.dir);
  }
  splitNames(side: 'train' | 'val'): string[] {
    return readSplitNames(this.dir, side);
  }
  writeSplit(names: { train: readonly string[]; val: readonly string[] }, record: SplitRecord): void {
    writeSplit(this.dir, names, record);
  }

  checkpoint(which: 'last' | 'best'): string {
    return checkpointDir(this.dir, which);
  }
  /** Whether the checkpoint is there with its state (the tensors are checked when it is loaded). */
  hasCheckpoint(which: 'last' | 'best'): boolean {
    return hasCheckpointState(this.dir, which);
  }
}

/** Whether the run folder's checkpoint `which` has its state file. */
export const hasCheckpointState = (runDir: string, which: 'last' | 'best'): boolean => existsSync(checkpointStatePath(checkpointDir(runDir, which)));

/** A sweep folder: sweep.yaml, index.json and one run folder per point. */
export class SweepFolder {
  constructor(readonly dir: string) {}

  path(file: SweepFile): string {
    return sweepPath(this.dir, file);
  }
  index(): SweepIndex | undefined {
    return readSweepIndex(this.dir);
  }
  writeIndex(index: SweepIndex): void {
    writeSweepIndex(this.dir, index);
  }
  /** The run folder of one point of the index (by its folder name). */
  run(entry: { dir: string }): RunFolder {
    return new RunFolder(join(this.dir, entry.dir));
  }
  /** The run folders the index names, in its order. */
  runs(index: SweepIndex): RunFolder[] {
    return index.points.map((p) => this.run(p));
  }
}

/** An ensemble folder (exp ensemble --out DIR). */
export class EnsembleFolder {
  constructor(readonly dir: string) {}

  get manifestPath(): string {
    return ensembleManifestPath(this.dir);
  }
  exists(): boolean {
    return existsSync(this.manifestPath);
  }
  manifest(): EnsembleFile {
    return readEnsembleManifest(this.dir);
  }
  write(m: EnsembleFile): void {
    writeEnsembleManifest(this.dir, m);
  }
}
