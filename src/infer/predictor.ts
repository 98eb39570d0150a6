/**
 * A model to score images with: one trained run, or an ensemble of runs (made by exp
 * ensemble) whose probabilities are averaged. Either way it has the tag vocabulary, the
 * thresholds, and how images must be prepared, so evaluate, predict and export treat both alike.
 */
import { resolve } from 'node:path';
import type { RunConfig } from '../config/normalise.js';
import { ModelUseError } from '../errors.js';
import type { BackendInfo, BackendName } from '../backend/types.js';
import { readEnsembleManifest } from '../store/ensemble.js';
import { evalBatchSize, predictProbs } from '../core/predict.js';
import { exportMetadata, restoreRun, type CheckpointChoice, type RestoredRun } from './restore.js';
import type { ExportMetadata } from './metadata.js';

export type { EnsembleFile } from '../store/ensemble.js';

export interface Predictor {
  /** The run folder, or the ensemble folder. */
  dir: string;
  kind: 'run' | 'ensemble';
  runs: RestoredRun[];
  /** The config whose data settings (image size, resize, extension) images are prepared with: the (first) run's. */
  cfg: RunConfig;
  tags: string[];
  thresholds: number[];
  thresholdsFrom: 'tuned' | 'config';
  backend: BackendInfo;
  /** Probabilities [indices.length, tags.length] for images of packed uint8 RGB `pixels`. */
  predict(pixels: Uint8Array, indices: readonly number[], opts: { tta: boolean; onBatch?: (done: number, total: number) => void }): Promise<Float32Array>;
  metadata(): ExportMetadata;
  dispose(): void;
}

/** Whether runs can be averaged: the same tags (in order), image size, resize and preprocessing. */
export function checkCompatible(runs: readonly Pick<RestoredRun, 'dir' | 'tags' | 'cfg'>[]): void {
  const [a, ...rest] = runs;
  if (!a) throw new ModelUseError({ code: 'INCOMPATIBLE_RUNS', message: 'an ensemble needs at least one run' });
  for (const b of rest) {
    const why =
      b.tags.join(' ') !== a.tags.join(' ')
        ? 'other tags'
        : b.cfg.data.image_size !== a.cfg.data.image_size
          ? `image size ${b.cfg.data.image_size}, not ${a.cfg.data.image_size}`
          : b.cfg.data.resize !== a.cfg.data.resize
            ? `resize ${b.cfg.data.resize}, not ${a.cfg.data.resize}`
            : b.cfg.model.preprocessing !== a.cfg.model.preprocessing
              ? `preprocessing ${b.cfg.model.preprocessing}, not ${a.cfg.model.preprocessing}`
              : undefined;
    if (why)
      throw new ModelUseError({
        code: 'INCOMPATIBLE_RUNS',
        message: `${b.dir} cannot be averaged with ${a.dir}: it has ${why}`,
        fix: 'ensemble runs of one sweep over settings that keep the inputs and outputs the same',
      });
  }
}

function fromRuns(dir: string, kind: Predictor['kind'], runs: RestoredRun[], thresholds: number[], thresholdsFrom: 'tuned' | 'config'): Predictor {
  const first = runs[0]!;
  return {
    dir,
    kind,
    runs,
    cfg: first.cfg,
    tags: first.tags,
    thresholds,
    thresholdsFrom,
    backend: first.backend,
    async predict(pixels, indices, opts) {
      const sum = new Float32Array(indices.length * first.tags.length);
      for (const r of runs) {
        const p = await predictProbs(r.model, pixels, r.cfg.data.image_size, indices, {
          preprocessing: r.cfg.model.preprocessing,
          batchSize: evalBatchSize(r.cfg),
          tta: opts.tta,
          ...(opts.onBatch ? { onBatch: opts.onBatch } : {}),
        });
        for (let i = 0; i < sum.length; i++) sum[i]! += p[i]! / runs.length;
      }
      return sum;
    },
    metadata: () => ({
      ...exportMetadata({ ...first, thresholds, thresholdsFrom }),
      ...(kind === 'ensemble' ? { run: { key: 'ensemble', uid: '', name: dir.split('/').at(-1)!, experiment: first.point.experiment } } : {}),
    }),
    dispose: () => {
      for (const r of runs) r.model.dispose();
    },
  };
}

/** Loads the run or ensemble folder `dir` on `backend`, from the checkpoint asked for (default: best); `tuned: false` skips thresholds.json. */
export async function loadPredictor(
  dir: string,
  ensemble: boolean,
  backend: 'auto' | BackendName,
  opts: { checkpoint?: CheckpointChoice; tuned?: boolean } = {},
): Promise<Predictor> {
  if (!ensemble) {
    const r = await restoreRun(dir, { backend, ...opts });
    return fromRuns(dir, 'run', [r], r.thresholds, r.thresholdsFrom);
  }
  const file = readEnsembleManifest(dir);
  const runs: RestoredRun[] = [];
  try {
    // Members are stored relative to the ensemble folder, so a runs folder moved with it still works.
    // The ensemble's own thresholds are used, so the members' thresholds.json are not read.
    for (const m of file.members)
      runs.push(await restoreRun(resolve(dir, m), { backend, tuned: false, ...(opts.checkpoint ? { checkpoint: opts.checkpoint } : {}) }));
    checkCompatible(runs);
    const tags = runs[0]!.tags;
    if (file.tags.join(' ') !== tags.join(' ') || file.thresholds.length !== tags.length) {
      throw new ModelUseError({
        code: 'INCOMPATIBLE_RUNS',
        message: `${dir}/ensemble.json was made for other tags than its runs have now (a member was retrained?)`,
        fix: 'make it again with exp ensemble',
      });
    }
  } catch (e) {
    for (const r of runs) r.model.dispose();
    throw e;
  }
  return fromRuns(dir, 'ensemble', runs, file.thresholds, 'tuned');
}
