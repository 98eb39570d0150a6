/** Half-precision encoding for the feature cache: IEEE 754 round-to-nearest-even, edge values, and the error bound. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import seedrandom from 'seedrandom';
import { fromFloat16, halfBits, roundToFloat16, toFloat16 } from '../../src/data/float16.js';

test('float32 to float16 rounds to nearest, ties to even, with infinities, NaN, zeros and subnormals', () => {
  const cases: [number, number][] = [
    [1, 0x3c00],
    [-2, 0xc000],
    [0.1, 0x2e66],
    [65504, 0x7bff],
    [65519, 0x7bff],
    [65520, 0x7c00], // the first value nearer infinity than the largest half
    [Infinity, 0x7c00],
    [-Infinity, 0xfc00],
    [0, 0],
    [-0, 0x8000],
    [2 ** -14, 0x0400], // smallest normal
    [2 ** -24, 0x0001], // smallest subnormal
    [2 ** -25, 0], // a tie between 0 and the smallest subnormal: even is 0
    [1.5 * 2 ** -25, 1],
    [1 + 2 ** -11, 0x3c00], // a tie: even mantissa stays
    [1 + 3 * 2 ** -11, 0x3c02], // a tie: odd mantissa rounds up
  ];
  for (const [x, bits] of cases) assert.equal(halfBits(x), bits, `${x} -> 0x${halfBits(x).toString(16)}, expected 0x${bits.toString(16)}`);
  const nan = new Float32Array(1);
  fromFloat16(toFloat16(new Float32Array([NaN])), nan);
  assert.ok(Number.isNaN(nan[0]));
});

test('a round trip keeps every normal value within half a unit in the 11th bit, and roundToFloat16 is that round trip', () => {
  const rng = seedrandom('f16');
  const n = 50_000;
  const x = new Float32Array(n);
  for (let i = 0; i < n; i++) x[i] = (rng() - 0.5) * 2 ** (rng() * 28 - 13);
  const back = new Float32Array(n);
  fromFloat16(toFloat16(x), back);
  let worst = 0;
  for (let i = 0; i < n; i++) if (Math.abs(x[i]!) >= 2 ** -14) worst = Math.max(worst, Math.abs(back[i]! - x[i]!) / Math.abs(x[i]!));
  assert.ok(worst <= 2 ** -11, `worst relative error ${worst}`);
  const inPlace = Float32Array.from(x);
  roundToFloat16(inPlace);
  assert.deepEqual(inPlace, back);
});
