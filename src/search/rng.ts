/**
 * Seeded random numbers for the search algorithms. A proposal's stream is derived from the
 * study's seed and the proposal's index alone, so a study replayed from its journal after a
 * crash proposes exactly what it would have proposed uninterrupted: no generator state has to
 * be saved between proposals.
 */
import seedrandom from 'seedrandom';

/** Uniform numbers in [0, 1). */
export type Uniform = () => number;

/** The stream of proposal `index` of a study seeded with `seed`. */
export const streamOf = (seed: number, index: number, purpose = 'tpe'): Uniform => seedrandom(`${purpose}:${seed}:${index}`);

/** An index drawn with probability proportional to `weights` (which sum to 1, up to rounding). */
export function drawIndex(u: Uniform, weights: readonly number[]): number {
  const r = u();
  let acc = 0;
  for (let i = 0; i < weights.length; i++) {
    acc += weights[i]!;
    if (r < acc) return i;
  }
  return weights.length - 1;
}

/** 32-bit CRC (zlib's, as Python's binascii.crc32): Hyperband assigns trials to brackets by it, as Optuna does. */
export function crc32(text: string): number {
  let c = 0xffffffff;
  for (const byte of new TextEncoder().encode(text)) {
    c ^= byte;
    for (let k = 0; k < 8; k++) c = c & 1 ? (c >>> 1) ^ 0xedb88320 : c >>> 1;
  }
  return (c ^ 0xffffffff) >>> 0;
}
