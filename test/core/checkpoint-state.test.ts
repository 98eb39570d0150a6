/**
 * The loop state's early-stopping reference was called `esBest` in checkpoints written before
 * issue 19 and `earlyStopBest` since: an old checkpoint must resume with its reference (or a
 * resumed run would restart early stopping's patience from the next epoch's value).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { readCheckpointInfo } from '../../src/core/checkpoint.js';

const state = { epoch: 3, history: [], best: { epoch: 2, value: 0.41 }, lr: 0.001, sinceBest: 1, sinceLrChange: 1, position: null };

function checkpointWith(info: object): string {
  const dir = mkdtempSync(join(tmpdir(), 'exp-ckpt-state-'));
  writeFileSync(join(dir, 'state.json'), JSON.stringify(info));
  return dir;
}

test('a checkpoint written with esBest (before the rename) resumes with its early-stopping reference as earlyStopBest', () => {
  for (const version of [2, undefined]) {
    const dir = checkpointWith({ version, epoch: 3, state: { ...state, esBest: 0.4 }, holds: 'trainable', base: null, optimizer: false, created: '' });
    const info = readCheckpointInfo(dir);
    assert.equal(info.state.earlyStopBest, 0.4, `version ${version}`);
    assert.equal('esBest' in info.state, false, `version ${version}: the old name is not carried on`);
    assert.equal(info.state.sinceBest, 1);
  }
});

test('a checkpoint written with earlyStopBest reads as written (null: no reference yet)', () => {
  for (const ref of [0.39, null]) {
    const dir = checkpointWith({
      version: 2,
      epoch: 3,
      state: { ...state, earlyStopBest: ref },
      holds: 'trainable',
      base: null,
      optimizer: false,
      created: '',
    });
    assert.equal(readCheckpointInfo(dir).state.earlyStopBest, ref);
  }
});
