/**
 * sweep.tpe and early_stop asha/hyperband are in the schema before exp run runs them: until
 * then exp run (and exp plan, exp validate) refuse them with a coded problem at their place in
 * the file, never running a grid or no pruning instead.
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

test('exp run refuses sweep.tpe and early_stop rule asha/hyperband as SWEEP_NOT_SUPPORTED (exit 2), naming the line', async () => {
  const dir = tempDir('exp-notyet-');
  const cases = [
    [
      'tpe',
      `sweep:\n  tpe:\n    count: 4\n    params:\n      training.learning_rate: { distribution: log_uniform, low: 0.0001, high: 0.01 }\n`,
      /sweep\.tpe .*not run by this version/,
      5,
    ],
    [
      'asha',
      `sweep:\n  grid: { training.learning_rate: [0.001, 0.01] }\n  early_stop: { rule: asha, min_epochs: 1, reduction_factor: 3 }\n`,
      /early_stop rule 'asha' is not run .*exp sweep simulate SWEEP --scheduler asha/,
      6,
    ],
    [
      'hyperband',
      `sweep:\n  grid: { training.learning_rate: [0.001, 0.01] }\n  early_stop: { rule: hyperband, brackets: 2 }\n`,
      /early_stop rule 'hyperband'/,
      6,
    ],
  ] as const;
  for (const [name, sweep, message, line] of cases) {
    const file = join(dir, `${name}.yaml`);
    writeFileSync(file, BASE + sweep);
    const r = await expIn(['run', file, '--runs-dir', join(dir, 'runs')], { cwd: dir });
    assert.equal(r.code, 2, `${name}: ${r.stdout}${r.stderr}`);
    assert.match(r.stderr, /SWEEP_NOT_SUPPORTED/);
    assert.equal(r.stderr.match(/\[[A-Z_]+\]/g)?.length, 1, `${name}: one problem only: ${r.stderr}`);
    assert.match(r.stderr, message);
    assert.match(r.stderr, new RegExp(`${name}\\.yaml:${line}:`));
  }
});

test('early_stop rule median still plans with the new settings absent', async () => {
  const dir = tempDir('exp-notyet-');
  const file = join(dir, 'median.yaml');
  writeFileSync(file, BASE + `sweep:\n  grid: { training.learning_rate: [0.001, 0.01] }\n  early_stop: { rule: median }\n`);
  const r = await expIn(['plan', file], { cwd: dir });
  assert.equal(r.code, 0, r.stderr);
});
