/**
 * Sweep folders written here in the store's format, without training (as test/search/simulate
 * does): sweep.yaml, index.json, and per point config.yaml, point.json, run.json, metrics.jsonl
 * and, once it ended, summary.json with per-tag F-beta. The result depends strongly on the
 * learning rate, a little on dropout, not on the batch size.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import seedrandom from 'seedrandom';
import { tempDir } from '../helpers/cli.js';
import { writeMetrics, writePoint, writeRunRecord, writeSummary } from '../../src/store/run.js';
import { configText } from '../../src/store/sweep.js';
import { planExperiment } from '../../src/sweep/plan.js';
import type { EpochLine, RunStatus, SweepIndex } from '../../src/store/types.js';

export const TAGS = ['clear', 'haze', 'primary', 'water', 'road'];

export interface FixtureOptions {
  points: number;
  epochs?: number;
  /** How many of the last points are still running (no summary) or never started. */
  running?: number;
  planned?: number;
  seed?: string;
}

/** The value a point reaches: a bump in log10(lr) around -3 (lr from 1e-4 to 1e-2), a small slope in dropout. */
const quality = (lr: number, dropout: number): number => 0.85 - 0.2 * (Math.log10(lr) + 3) ** 2 - 0.05 * dropout;

function pointParams(u: () => number): Record<string, unknown> {
  return {
    'training.learning_rate': Number((10 ** (-4 + 2 * u())).toPrecision(3)),
    'model.dropout': Math.round(u() * 50) / 100,
    'training.batch_size': [16, 32, 64][Math.floor(u() * 3)]!,
  };
}

/** Writes the sweep; returns its folder. Every 5th ended point is pruned at epoch 2 (with its reason). */
export function writeSweep(opts: FixtureOptions): string {
  const u = seedrandom(opts.seed ?? 'report');
  const epochs = opts.epochs ?? 6;
  const root = tempDir('exp-report-');
  const sweep = join(root, 'runs', 'demo', 'sweep-rep');
  // One resolved config for every point (what the sink reads, tracking.register_model): the swept values live in point.json.
  writeFileSync(join(root, 'demo.yaml'), 'name: demo\ndata: { path: ./data }\n');
  const config = configText(planExperiment(join(root, 'demo.yaml')).plan!.points[0]!.config);
  const entries = Array.from({ length: opts.points }, (_, i) => {
    const params = pointParams(u);
    const key = `${i.toString(16)}`.padStart(8, 'a');
    return { index: i, key, name: `lr=${params['training.learning_rate']}-${key}`, params, dir: `p${i}-${key}` };
  });
  const index: SweepIndex = {
    experiment: 'demo',
    sweep: 'sweep-rep',
    uid: 'sweep-uid',
    file: 'demo.yaml',
    created: new Date(Date.UTC(2026, 0, 1)).toISOString(),
    points: entries,
  };
  mkdirSync(sweep, { recursive: true });
  writeFileSync(
    join(sweep, 'sweep.yaml'),
    '# Resolved experiment, written by exp\nname: demo\ntraining:\n  learning_rate: 0.001\n  batch_size: 32\nmodel:\n  dropout: 0.5\nsweep:\n  metric:\n    name: final_val_fbeta\n',
  );
  writeFileSync(join(sweep, 'index.json'), JSON.stringify(index));
  const ended = opts.points - (opts.running ?? 0) - (opts.planned ?? 0);
  for (const e of entries) {
    const state = e.index < ended ? 'ended' : e.index < ended + (opts.running ?? 0) ? 'running' : 'planned';
    writePointFolder(join(sweep, e.dir), e, state, epochs, u, index, config);
  }
  return sweep;
}

function writePointFolder(
  dir: string,
  e: SweepIndex['points'][number],
  state: string,
  epochs: number,
  u: () => number,
  index: SweepIndex,
  config: string,
): void {
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, 'config.yaml'), config);
  const created = new Date(Date.UTC(2026, 0, 1)).toISOString();
  writePoint(dir, {
    version: 1,
    uid: `uid-${e.index}`,
    key: e.key,
    name: e.name,
    index: e.index,
    params: e.params,
    experiment: 'demo',
    sweep: index.sweep,
    sweep_uid: index.uid,
    created,
  });
  if (state === 'planned') return;
  const pruned = state === 'ended' && e.index % 5 === 4;
  const top = quality(e.params['training.learning_rate'] as number, e.params['model.dropout'] as number) + 0.01 * u();
  const done = pruned ? 2 : state === 'running' ? 3 : epochs;
  const lines: EpochLine[] = Array.from({ length: done }, (_, k) => {
    const f = top * (1 - Math.exp(-(k + 1) / 2));
    return { epoch: k + 1, loss: 1 - f, fbeta: Math.min(f + 0.03, 1), val_loss: 1.05 - f, val_fbeta: f, seconds: 10 };
  });
  writeMetrics(dir, lines);
  // Finishing order differs from sweep order: later points of an index can end first.
  const ended = new Date(Date.UTC(2026, 0, 1, 1) + ((e.index * 7919) % 1000) * 60_000).toISOString();
  const status: RunStatus = state === 'running' ? 'running' : pruned ? 'pruned' : 'completed';
  const reason = pruned ? `pruned at epoch 2: val_fbeta ${lines[1]!.val_fbeta!.toFixed(3)} < median 0.7 of 4 points` : 'finished';
  writeRunRecord(dir, {
    key: e.key,
    uid: `uid-${e.index}`,
    name: e.name,
    status,
    created,
    started: created,
    attempts: 1,
    ...(state === 'ended' ? { ended, reason } : {}),
  });
  if (state !== 'ended') return;
  const best = lines[lines.length - 1]!;
  const perTag = Object.fromEntries(TAGS.map((t, i) => [`val_fbeta.${t}`, Math.max(0, Math.min(1, best.val_fbeta! + (i - 2) * 0.08 + 0.05 * u()))]));
  writeSummary(dir, {
    status,
    reason,
    key: e.key,
    name: e.name,
    backend: 'cpu',
    device: 'cpu',
    epochs_completed: done,
    epochs_planned: epochs,
    monitor: 'val_loss',
    mode: 'min',
    best: { epoch: best.epoch, metrics: { val_loss: best.val_loss!, val_fbeta: best.val_fbeta! } },
    final: { val_loss: best.val_loss!, val_fbeta: best.val_fbeta!, ...perTag },
    baseline: { constant_top_k: 1, val_fbeta: 0.4 },
    duration_s: 10 * done,
    images_per_second: { train: null, eval: null },
    tensors: { at_start: 0, after_each_epoch: [] },
    params: { total: 1, trainable: 1 },
    split: { train: 1, val: 1, hash: 'h' },
    tags: TAGS,
  });
}
