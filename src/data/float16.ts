/**
 * IEEE 754 half precision for the feature cache's `dtype: float16` storage. Node 20 has no
 * Float16Array, so entries are kept as raw 16-bit patterns: encoding rounds to nearest, ties to
 * even (as a hardware conversion does), and decoding is one table lookup per value.
 */
const f32 = new Float32Array(1);
const u32 = new Uint32Array(f32.buffer);

/** Rounds `full >>> shift` to nearest, ties to even. */
function roundShift(full: number, shift: number): number {
  const h = full >>> shift;
  const rem = full & ((1 << shift) - 1);
  const half = 1 << (shift - 1);
  return rem > half || (rem === half && (h & 1) === 1) ? h + 1 : h;
}

/** One float32 value's nearest half-precision bit pattern. */
export function halfBits(x: number): number {
  f32[0] = x;
  const b = u32[0]!;
  const sign = (b >>> 16) & 0x8000;
  const exp = (b >>> 23) & 0xff;
  const mant = b & 0x7fffff;
  if (exp === 0xff) return sign | 0x7c00 | (mant ? 0x200 : 0); // infinity, NaN
  const e = exp - 127 + 15;
  if (e >= 0x1f) return sign | 0x7c00; // beyond 65504: infinity
  // Subnormal halves: value = m * 2^-24; a carry out of the mantissa gives the smallest normal, as it should.
  if (e <= 0) return e < -10 ? sign : sign | roundShift(mant | 0x800000, 14 - e);
  // Normal: a carry out of the mantissa bumps the exponent (and 0x7bff + 1 is infinity).
  return sign | roundShift((e << 23) | mant, 13);
}

let table: Float32Array | undefined;

/** The 65,536 half values as float32 (built once, 256 KiB). */
function halfTable(): Float32Array {
  if (table) return table;
  table = new Float32Array(65536);
  for (let h = 0; h < 65536; h++) {
    const s = h & 0x8000 ? -1 : 1;
    const e = (h >>> 10) & 0x1f;
    const m = h & 0x3ff;
    table[h] = e === 0 ? s * m * 2 ** -24 : e === 31 ? (m ? NaN : s * Infinity) : s * (1 + m / 1024) * 2 ** (e - 15);
  }
  return table;
}

export function toFloat16(data: Float32Array): Uint16Array {
  const out = new Uint16Array(data.length);
  for (let i = 0; i < data.length; i++) out[i] = halfBits(data[i]!);
  return out;
}

export function fromFloat16(bits: Uint16Array, out: Float32Array): void {
  const t = halfTable();
  for (let i = 0; i < bits.length; i++) out[i] = t[bits[i]!]!;
}

/** Rounds every value to the nearest half in place: what a float16 entry will give back. */
export function roundToFloat16(data: Float32Array): void {
  const t = halfTable();
  for (let i = 0; i < data.length; i++) data[i] = t[halfBits(data[i]!)]!;
}
