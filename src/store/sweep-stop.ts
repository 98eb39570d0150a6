/**
 * stopped.json in a sweep folder: the sweep's last exp run stopped starting points because its
 * budget (sweep.budget) was spent. The MLflow parent reads it (the reason as exp.stop_reason,
 * the sweep counted as ended); the next exp run of the file removes it when it starts.
 */
import { rmSync } from 'node:fs';
import { readJson, writeJsonAtomic } from '../util/fsx.js';
import { sweepPath } from './layout.js';

export interface SweepStop {
  reason: string;
  /** The best point when it stopped, by the ranking metric. */
  best?: { run: string; metric: string; value: number };
  time: string;
}

export const readSweepStop = (sweepDir: string): SweepStop | undefined => readJson<SweepStop>(sweepPath(sweepDir, 'stop'));
export const writeSweepStop = (sweepDir: string, stop: SweepStop): void => writeJsonAtomic(sweepPath(sweepDir, 'stop'), stop);
export const clearSweepStop = (sweepDir: string): void => rmSync(sweepPath(sweepDir, 'stop'), { force: true });
