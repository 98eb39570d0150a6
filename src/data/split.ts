/**
 * The train/validation split. It reproduces scikit-learn's
 * `train_test_split(test_size, random_state=seed)` exactly: n_test = ceil(test_size * n),
 * and the order comes from NumPy's legacy `RandomState(seed).permutation(n)` (MT19937 with
 * `init_genrand`, then a Fisher-Yates shuffle drawing bounded integers by masked rejection).
 * So a run on the same rows, in the same order, gets the same split as the Keras reference.
 */
import { createHash } from 'node:crypto';
import { DataError } from '../errors.js';

/** MT19937, the generator behind NumPy's legacy RandomState. */
export class Mt19937 {
  private readonly mt = new Uint32Array(624);
  private index = 624;

  constructor(seed: number) {
    this.mt[0] = seed >>> 0;
    for (let i = 1; i < 624; i++) {
      const prev = this.mt[i - 1]! ^ (this.mt[i - 1]! >>> 30);
      // 1812433253 * prev + i, in 32-bit arithmetic (split to stay exact in doubles).
      this.mt[i] = ((((prev & 0xffff0000) >>> 16) * 1812433253) << 16) + (prev & 0x0000ffff) * 1812433253 + i;
    }
  }

  nextUint32(): number {
    const mt = this.mt;
    if (this.index >= 624) {
      for (let i = 0; i < 624; i++) {
        const y = (mt[i]! & 0x80000000) | (mt[(i + 1) % 624]! & 0x7fffffff);
        mt[i] = mt[(i + 397) % 624]! ^ (y >>> 1) ^ (y & 1 ? 0x9908b0df : 0);
      }
      this.index = 0;
    }
    let y = mt[this.index++]!;
    y ^= y >>> 11;
    y ^= (y << 7) & 0x9d2c5680;
    y ^= (y << 15) & 0xefc60000;
    y ^= y >>> 18;
    return y >>> 0;
  }

  /** A uniform integer in [0, max], as NumPy's legacy `random_interval` draws it. */
  interval(max: number): number {
    if (max === 0) return 0;
    let mask = max;
    mask |= mask >>> 1; mask |= mask >>> 2; mask |= mask >>> 4; mask |= mask >>> 8; mask |= mask >>> 16;
    mask >>>= 0;
    let v: number;
    do { v = (this.nextUint32() & mask) >>> 0; } while (v > max);
    return v;
  }
}

/** NumPy's `RandomState(seed).permutation(n)`. */
export function numpyPermutation(n: number, seed: number): Uint32Array {
  const out = new Uint32Array(n);
  for (let i = 0; i < n; i++) out[i] = i;
  const rng = new Mt19937(seed);
  for (let i = n - 1; i >= 1; i--) {
    const j = rng.interval(i);
    const t = out[i]!; out[i] = out[j]!; out[j] = t;
  }
  return out;
}

export interface Split {
  /** Row indices (into the loaded rows) of each part, in scikit-learn's order. */
  train: number[];
  val: number[];
}

/** scikit-learn's train_test_split with a float test_size and an integer random_state. */
export function splitIndices(n: number, testSize: number, seed: number): Split {
  const nTest = Math.ceil(testSize * n);
  const nTrain = n - nTest;
  if (nTest < 1 || nTrain < 1)
    throw new DataError({
      code: 'SPLIT_TOO_SMALL',
      message: `cannot split ${n} images with test_size ${testSize}: each part needs at least one image`,
      fix: 'use more images (data.limit) or another data.split.test_size',
      exit: 'failed',
    });
  const perm = numpyPermutation(n, seed);
  return { val: Array.from(perm.subarray(0, nTest)), train: Array.from(perm.subarray(nTest, nTest + nTrain)) };
}

/** A hash of the split's image names, saved with the run so a reproduction can verify it. */
export function splitHash(trainNames: readonly string[], valNames: readonly string[]): string {
  return createHash('sha256').update(trainNames.join('\n')).update('\u0000').update(valNames.join('\n')).digest('hex').slice(0, 16);
}
