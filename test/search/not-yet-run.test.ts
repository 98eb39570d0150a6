/**
 * sweep.tpe is in the schema before exp run runs it: until then exp run (and exp plan, exp
 * validate) refuse it with a coded problem at its place in the file, never running a random
 * search instead. early_stop asha and hyperband are run (they were refused the same way before).
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

test('exp run refuses sweep.tpe as SWEEP_NOT_SUPPORTED (exit 2), naming the line', async () => {
  const dir = tempDir('exp-notyet-');
  const file = join(dir, 'tpe.yaml');
  writeFileSync(
    file,
    BASE + `sweep:\n  tpe:\n    count: 4\n    params:\n      training.learning_rate: { distribution: log_uniform, low: 0.0001, high: 0.01 }\n`,
  );
  const r = await expIn(['run', file, '--runs-dir', join(dir, 'runs')], { cwd: dir });
  assert.equal(r.code, 2, r.stdout + r.stderr);
  assert.match(r.stderr, /SWEEP_NOT_SUPPORTED/);
  assert.equal(r.stderr.match(/\[[A-Z_]+\]/g)?.length, 1, `one problem only: ${r.stderr}`);
  assert.match(r.stderr, /sweep\.tpe .*not run by this version/);
  assert.match(r.stderr, /tpe\.yaml:5:/);
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
