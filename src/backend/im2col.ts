/**
 * im2col for the Conv2D filter gradient, written as one tight loop in JS.
 *
 * Why a JS loop and not tf ops: on the wasm backend `Slice` and `Concat` copy row by row
 * through `TypedArray.set`, one call per innermost run. At VGG16 block5 (8x8 maps, batch 32) a
 * run is 8 floats, so pad + 9 slices + concat costs ~1.2M `set` calls: 130-230 ms of CPU, a
 * quarter to a third of the whole gradient. This loop, writing into wasm's heap, takes ~35 ms.
 */
import * as tf from '@tensorflow/tfjs';

/** Everything the column builder needs to know about one NHWC convolution. */
export interface ConvGeometry {
  inH: number;
  inW: number;
  inC: number;
  kh: number;
  kw: number;
  sh: number;
  sw: number;
  /** Zero rows/columns added before the first input row/column. */
  top: number;
  left: number;
  outH: number;
  outW: number;
}

/**
 * Geometry of a conv2d with dilation 1, NHWC, from tfjs's own rules for 'same'/'valid'/explicit
 * padding and rounding, so the gradient agrees with the forward op by construction.
 */
export function convGeometry(
  xShape: readonly [number, number, number, number],
  filterShape: readonly [number, number, number, number],
  strides: number | [number, number],
  pad: tf.backend_util.ExplicitPadding | 'same' | 'valid' | number,
  dimRoundingMode?: 'floor' | 'round' | 'ceil',
): ConvGeometry {
  const info = tf.backend_util.computeConv2DInfo([...xShape], [...filterShape], strides, 1, pad, dimRoundingMode, false, 'channelsLast');
  return {
    inH: info.inHeight,
    inW: info.inWidth,
    inC: info.inChannels,
    kh: info.filterHeight,
    kw: info.filterWidth,
    sh: info.strideHeight,
    sw: info.strideWidth,
    top: info.padInfo.top,
    left: info.padInfo.left,
    outH: info.outHeight,
    outW: info.outWidth,
  };
}

/**
 * Transposed im2col: row `(i*kw + j)*inC + c`, column `(b*outH + p)*outW + q` holds
 * x[b, p*sh + i - top, q*sw + j - left, c], or 0 where that falls in the padding.
 *
 * @param xt input in channel-major layout [inC, n, inH, inW] (a transposed NHWC batch), so
 *   that each copied run is contiguous in both source and destination
 * @param n images in this chunk
 * @param out where to write (e.g. straight into wasm's heap, to skip an upload copy); it is
 *   zeroed first. A new array when absent.
 * @returns Float32Array of shape [kh*kw*inC, n*outH*outW]: the row order is the filter's
 *   [kh, kw, inC] order, so cols · dy[n*outH*outW, outC] is dW[kh, kw, inC, outC] directly.
 */
export function im2colT(xt: Float32Array, n: number, g: ConvGeometry, out?: Float32Array): Float32Array {
  const { inH, inW, inC, kh, kw, sh, sw, top, left, outH, outW } = g;
  const plane = outH * outW;
  const m = n * plane;
  if (out === undefined) out = new Float32Array(kh * kw * inC * m);
  else if (out.length !== kh * kw * inC * m) throw new Error(`im2colT: output has ${out.length} floats, needs ${kh * kw * inC * m} (bug in exp)`);
  else out.fill(0);
  for (let i = 0; i < kh; i++) {
    // Output rows whose source row p*sh + i - top lies inside the image; the rest stay 0.
    const p0 = Math.max(0, Math.ceil((top - i) / sh));
    const p1 = Math.min(outH, Math.floor((inH - 1 + top - i) / sh) + 1);
    for (let j = 0; j < kw; j++) {
      const q0 = Math.max(0, Math.ceil((left - j) / sw));
      const q1 = Math.min(outW, Math.floor((inW - 1 + left - j) / sw) + 1);
      const tap = i * kw + j;
      for (let c = 0; c < inC; c++) {
        const row = (tap * inC + c) * m;
        for (let b = 0; b < n; b++) {
          const src = (c * n + b) * inH * inW;
          const dst = row + b * plane;
          for (let p = p0; p < p1; p++) {
            const s = src + (p * sh + i - top) * inW + j - left;
            const d = dst + p * outW;
            if (sw === 1) {
              for (let q = q0; q < q1; q++) out[d + q] = xt[s + q];
            } else {
              for (let q = q0; q < q1; q++) out[d + q] = xt[s + q * sw];
            }
          }
        }
      }
    }
  }
  return out;
}
