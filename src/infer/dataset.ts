/**
 * The labelled images `exp evaluate` scores: the run's own dataset and saved split (val,
 * train or all), or any Planet-format folder, with targets in the run's tag order.
 */
import type { RunConfig } from '../config/normalise.js';
import { DataError } from '../errors.js';
import { loadDataset, type Dataset } from '../data/planet.js';
import { resolveSplit } from '../core/data.js';

export interface Labelled {
  ds: Dataset;
  /** The images scored (indices into ds). */
  indices: number[];
  /** [indices.length, runTags.length] in the run's tag order. */
  targets: Uint8Array;
  source: string;
}

export async function labelledImages(
  dir: string,
  cfg: RunConfig,
  runTags: readonly string[],
  opts: { data?: string; split: 'val' | 'train' | 'all'; onBadImage?: 'error' | 'skip'; onProgress?: (m: string) => void },
): Promise<Labelled> {
  const data = opts.data ? { ...cfg.data, path: opts.data, limit: null, synth: null } : cfg.data;
  const ds = await loadDataset(
    { ...data, on_bad_image: opts.onBadImage ?? data.on_bad_image },
    { ...(opts.onProgress ? { onProgress: opts.onProgress } : {}) },
  );
  let indices: number[];
  if (opts.data) indices = ds.names.map((_, i) => i);
  else {
    const split = resolveSplit(dir, ds, cfg);
    indices = opts.split === 'val' ? split.val : opts.split === 'train' ? split.train : [...split.train, ...split.val].sort((a, b) => a - b);
  }
  const at = new Map(runTags.map((t, i) => [t, i]));
  const foreign = ds.tags.filter((t) => !at.has(t));
  if (foreign.length > 0) {
    throw new DataError({
      code: 'UNKNOWN_TAGS',
      message: `${data.path} has tags the model does not know: ${foreign.join(', ')}`,
      fix: "score data labelled with the run's tags (tags.txt of the run)",
      exit: 'invalid',
    });
  }
  const targets = new Uint8Array(indices.length * runTags.length);
  indices.forEach((idx, i) =>
    ds.tags.forEach((tag, t) => {
      if (ds.targets[idx * ds.tags.length + t]) targets[i * runTags.length + at.get(tag)!] = 1;
    }),
  );
  return { ds, indices, targets, source: opts.data ? data.path : `${cfg.data.path} (${opts.split} split)` };
}
