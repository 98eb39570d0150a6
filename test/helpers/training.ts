/** Shared pieces for tests that really train: tiny synthetic experiments and backend lists. */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { probeBackends } from '../../src/backend/select.js';

/** The training backends to test here: always wasm, and the native binding when it is built. */
export async function trainingBackends(): Promise<('tensorflow' | 'wasm')[]> {
  const rows = await probeBackends();
  return (['tensorflow', 'wasm'] as const).filter((n) => rows.some((r) => r.name === n && r.available));
}

/** Writes a tiny experiment (synthetic data generated on first use) and returns its path. */
export function tinyExperiment(dir: string, opts: { backend: string; epochs?: number; extra?: string; name?: string; count?: number }): string {
  const file = join(dir, `${opts.name ?? 'tiny'}.yaml`);
  writeFileSync(
    file,
    [
      `name: ${opts.name ?? 'tiny'}`,
      'data:',
      `  path: ${join(dir, 'data')}`,
      '  image_size: 32',
      '  resize: bilinear',
      `  synth: { count: ${opts.count ?? 80}, seed: 0, size: 64 }`,
      'model: { weights: none, frozen_blocks: 4, head: { units: 32 } }',
      'augmentation: { rotation_range: 15, dihedral: true }',
      `training: { batch_size: 16, epochs: ${opts.epochs ?? 2}, learning_rate: 0.001 }`,
      `backend: ${opts.backend}`,
      opts.extra ?? '',
    ].join('\n') + '\n',
  );
  return file;
}
