import { test } from 'node:test';
import assert from 'node:assert/strict';
import { numpyPermutation, splitIndices, splitHash } from '../../src/data/split.js';
import { DataError } from '../../src/errors.js';

// Reference values printed by NumPy 2.4: list(np.random.RandomState(seed).permutation(n)).
test('the permutation is NumPy legacy RandomState(seed).permutation(n)', () => {
  assert.deepEqual(Array.from(numpyPermutation(20, 1)), [3, 16, 6, 10, 2, 14, 4, 17, 7, 1, 13, 0, 19, 18, 9, 15, 8, 12, 11, 5]);
  assert.deepEqual(Array.from(numpyPermutation(10, 0)), [2, 8, 4, 9, 1, 6, 7, 3, 0, 5]);
});

test('the split is scikit-learn train_test_split(test_size=0.3, random_state=1) on Planet: 28,335 / 12,144', () => {
  const s = splitIndices(40479, 0.3, 1);
  assert.equal(s.train.length, 28335);
  assert.equal(s.val.length, 12144);
  assert.deepEqual(s.val.slice(0, 5), [32752, 7767, 4254, 23119, 22101]);
  assert.deepEqual(s.train.slice(0, 5), [17176, 15490, 18762, 9284, 25494]);
  assert.equal(s.train.at(-1), 33003);
  assert.equal(new Set([...s.train, ...s.val]).size, 40479, 'a partition');
});

test('split: seeded, and the hash identifies it', () => {
  assert.deepEqual(splitIndices(100, 0.25, 3), splitIndices(100, 0.25, 3));
  assert.notDeepEqual(splitIndices(100, 0.25, 3), splitIndices(100, 0.25, 4));
  assert.equal(splitHash(['a', 'b'], ['c']), splitHash(['a', 'b'], ['c']));
  assert.notEqual(splitHash(['a', 'b'], ['c']), splitHash(['a', 'c'], ['b']));
  assert.throws(() => splitIndices(1, 0.5, 0), (e: unknown) => e instanceof DataError && e.code === 'SPLIT_TOO_SMALL' && /at least one image/.test(e.message));
});
