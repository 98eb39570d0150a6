/**
 * The recipe's resolved config (every default from the schema), pointed at a bench dataset:
 * the bench measures exactly what `exp train` would run with `frozen_blocks: 4`, Adam, nearest
 * resize and rotation + flips, without spelling those settings a second time.
 */
import { join } from 'node:path';
import { normalise, runConfigOf, type RunConfig } from '../src/config/normalise.js';
import type { ExperimentFile } from '../src/config/types.gen.js';

export function recipeConfig(dataPath: string): RunConfig {
  const written = { name: 'bench', data: { path: dataPath }, model: { weights: 'none' } } as ExperimentFile;
  return runConfigOf(normalise(written, join(dataPath, 'bench.yaml')));
}
