/**
 * Making an ensemble: the members' probabilities on their shared validation split, averaged,
 * then thresholds tuned on the average (with a held-out estimate), written to ensemble.json.
 * Members must have been validated on the same images (the same split hash), or the average
 * would be scored on images some members trained on.
 */
import { relative } from 'node:path';
import { ModelUseError } from '../errors.js';
import { writeEnsembleManifest, type EnsembleFile } from '../store/ensemble.js';
import { readSplitRecord } from '../store/split.js';
import { labelledImages } from './dataset.js';
import { checkCompatible } from './predictor.js';
import { restoreRun, type RestoredRun } from './restore.js';
import { evalBatchSize, predictProbs } from '../core/predict.js';
import { fbetaAt, heldOutEstimate, tuneThresholds } from '../core/thresholds.js';
import type { BackendName } from '../backend/types.js';

/** The hash of the run's saved validation split (split/split.json). */
export function splitHashOf(dir: string): string {
  const s = readSplitRecord(dir);
  if (!s?.hash)
    throw new ModelUseError({ code: 'NO_MODEL', message: `${dir} has no saved split (split/split.json)`, fix: 'only trained runs can be ensembled' });
  return s.hash;
}

/** Scores `dirs` alone and averaged on their validation split and writes `out`/ensemble.json. */
export async function makeEnsemble(
  dirs: readonly string[],
  out: string,
  opts: { tta: boolean; backend: 'auto' | BackendName; onProgress?: (m: string) => void },
): Promise<EnsembleFile> {
  if (dirs.length < 2)
    throw new ModelUseError({
      code: 'INCOMPATIBLE_RUNS',
      message: `an ensemble needs at least 2 runs, got ${dirs.length}`,
      fix: 'name two or more run folders, or a sweep folder with --top K (K >= 2)',
    });
  const hashes = dirs.map(splitHashOf);
  const odd = dirs.findIndex((_, i) => hashes[i] !== hashes[0]);
  if (odd > 0)
    throw new ModelUseError({
      code: 'INCOMPATIBLE_RUNS',
      message: `${dirs[odd]} was validated on other images than ${dirs[0]} (split ${hashes[odd]}, not ${hashes[0]})`,
      fix: 'ensemble runs that share data.split (test_size and seed) and data',
    });
  const members: RestoredRun[] = [];
  try {
    for (const d of dirs) members.push(await restoreRun(d, { backend: opts.backend }));
    checkCompatible(members);
    const first = members[0]!;
    const data = await labelledImages(first.dir, first.cfg, first.tags, { split: 'val', ...(opts.onProgress ? { onProgress: opts.onProgress } : {}) });
    const nTags = first.tags.length;
    const beta = first.cfg.metrics.beta;
    const base = first.tags.map(() => first.cfg.metrics.threshold);
    const mean = new Float32Array(data.indices.length * nTags);
    const scores: EnsembleFile['scores']['members'] = [];
    for (const m of members) {
      opts.onProgress?.(`scoring ${m.dir} on ${data.indices.length} validation images`);
      const probs = await predictProbs(m.model, data.ds.pixels, m.cfg.data.image_size, data.indices, {
        preprocessing: m.cfg.model.preprocessing,
        batchSize: evalBatchSize(m.cfg),
        tta: opts.tta,
      });
      scores.push({
        dir: relative(out, m.dir),
        val_fbeta: fbetaAt({ probs, targets: data.targets, nTags }, beta, base),
        val_fbeta_tuned: fbetaAt({ probs, targets: data.targets, nTags }, beta, m.thresholds),
      });
      for (let i = 0; i < mean.length; i++) mean[i]! += probs[i]! / members.length;
    }
    const p = { probs: mean, targets: data.targets, nTags };
    const tuned = tuneThresholds(p, beta, { start: base });
    const held = heldOutEstimate(p, beta, first.cfg.metrics.threshold);
    const file: EnsembleFile = {
      version: 1,
      members: dirs.map((d) => relative(out, d)),
      tags: first.tags,
      thresholds: tuned.thresholds,
      split_hash: hashes[0]!,
      image_size: first.cfg.data.image_size,
      preprocessing: first.cfg.model.preprocessing,
      beta,
      tta: opts.tta,
      scores: {
        members: scores,
        val_fbeta: fbetaAt(p, beta, base),
        val_fbeta_tuned: tuned.fbeta,
        held_out: { at_threshold: held.at_base, tuned: held.tuned },
        images: data.indices.length,
      },
      created: new Date().toISOString(),
    };
    writeEnsembleManifest(out, file);
    return file;
  } finally {
    for (const m of members) m.model.dispose();
  }
}
