/**
 * Adaptive settings that were refused before exp run ran them now plan: sweep.tpe (alone in its
 * sweep: with a grid it is a coded conflict at its place in the file), early_stop asha and hyperband.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { expIn, tempDir } from '../helpers/cli.js';

const BASE = `name: adaptive
data: { path: planet }
training: { epochs: 3 }
`;

test('sweep.tpe plans (exp run runs it: test/exec/tpe.test.ts); combined with a grid it is SWEEP_CONFLICT (exit 2), naming the line', async () => {
  const dir = tempDir('exp-notyet-');
  const file = join(dir, 'tpe.yaml');
  const tpe = `  tpe:\n    count: 4\n    params:\n      training.learning_rate: { distribution: log_uniform, low: 0.0001, high: 0.01 }\n`;
  writeFileSync(file, BASE + `sweep:\n${tpe}`);
  const ok = await expIn(['plan', file], { cwd: dir });
  assert.equal(ok.code, 0, ok.stdout + ok.stderr);
  assert.match(ok.stdout, /A TPE study of 4 points: the 4 random start-up points above/);
  writeFileSync(file, BASE + `sweep:\n${tpe}  grid: { training.batch_size: [8, 16] }\n`);
  const r = await expIn(['run', file, '--runs-dir', join(dir, 'runs')], { cwd: dir });
  assert.equal(r.code, 2, r.stdout + r.stderr);
  assert.equal(r.stderr.match(/\[[A-Z_]+\]/g)?.length, 1, `one problem only: ${r.stderr}`);
  assert.match(r.stderr, /SWEEP_CONFLICT/);
  assert.match(r.stderr, /sweep\.tpe .*cannot be combined with sweep\.grid/);
  assert.match(r.stderr, /tpe\.yaml:9:/);
});

test('early_stop rules asha and hyperband plan (exp run runs them: test/exec/asha.test.ts)', async () => {
  const dir = tempDir('exp-notyet-');
  for (const [name, rule] of [
    ['asha', '{ rule: asha, min_epochs: 1, reduction_factor: 3 }'],
    ['hyperband', '{ rule: hyperband, brackets: 2 }'],
  ] as const) {
    const file = join(dir, `${name}.yaml`);
    writeFileSync(file, BASE + `sweep:\n  grid: { training.learning_rate: [0.001, 0.01] }\n  early_stop: ${rule}\n`);
    const r = await expIn(['plan', file], { cwd: dir });
    assert.equal(r.code, 0, `${name}: ${r.stdout}${r.stderr}`);
    assert.doesNotMatch(r.stderr, /SWEEP_NOT_SUPPORTED/);
  }
});

test('early_stop rule median still plans with the new settings absent', async () => {
  const dir = tempDir('exp-notyet-');
  const file = join(dir, 'median.yaml');
  writeFileSync(file, BASE + `sweep:\n  grid: { training.learning_rate: [0.001, 0.01] }\n  early_stop: { rule: median }\n`);
  const r = await expIn(['plan', file], { cwd: dir });
  assert.equal(r.code, 0, r.stderr);
});
