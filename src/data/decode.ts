/**
 * JPEG decoding and resizing with sharp (libvips). Output is packed RGB uint8, HWC,
 * `size x size x 3`, whatever the input: grayscale and CMYK are converted to sRGB, alpha is
 * dropped, and any input size is resized to the square target ignoring aspect ratio (as
 * Keras `load_img(target_size=...)` does). A decode failure is returned as data, never thrown,
 * so a bad file becomes a row in the bad-image report.
 */
import { constants } from 'node:fs';
import { open } from 'node:fs/promises';
import { availableParallelism } from 'node:os';
import sharp from 'sharp';
import type { ResolvedExperiment } from '../config/types.gen.js';

export type ResizeKernel = ResolvedExperiment['data']['resize'];

/** Schema kernel names to libvips's (nearest is exp's own: see sampleNearest). */
const KERNELS: Record<Exclude<ResizeKernel, 'nearest'>, keyof sharp.KernelEnum> = { bilinear: 'linear', bicubic: 'cubic', lanczos3: 'lanczos3' };

// Per-image pipelines are tiny, so libvips's own threading only adds contention: run one
// vips thread per image and keep several images in flight on libuv's pool instead.
sharp.cache(false);
sharp.concurrency(1);

export type DecodeResult = { ok: true; pixels: Buffer } | { ok: false; reason: string };

/**
 * Nearest-neighbour as PIL (and so Keras's load_img) does it: output pixel i takes input pixel
 * floor((i + 0.5) * in / out) on each axis (k*i + k/2 for a reduction by k), with PIL's
 * rounding: the coordinate is accumulated step by step in doubles, so at a non-integer ratio
 * a boundary can land one pixel lower (256->100: pixel 12 takes 31, not 32), as in PIL.
 * libvips's own nearest cannot be used past a 2x reduction of a JPEG: it shrinks on load in
 * the DCT (a box average) first, and at 256->32 no pixel matched PIL's.
 */
function nearestIndices(from: number, to: number): number[] {
  const step = from / to;
  const out: number[] = [];
  for (let i = 0, v = step * 0.5; i < to; i++, v += step) out.push(Math.min(from - 1, Math.trunc(v)));
  return out;
}

function sampleNearest(src: Buffer, width: number, height: number, size: number): Buffer {
  const out = Buffer.alloc(size * size * 3);
  const xs = nearestIndices(width, size);
  const ys = nearestIndices(height, size);
  for (let y = 0; y < size; y++) {
    for (let x = 0; x < size; x++) src.copy(out, (y * size + x) * 3, (ys[y]! * width + xs[x]!) * 3, (ys[y]! * width + xs[x]!) * 3 + 3);
  }
  return out;
}

/** Decodes one encoded image into `size*size*3` RGB bytes. */
export async function decodeImage(input: Buffer, size: number, kernel: ResizeKernel): Promise<DecodeResult> {
  try {
    const image = sharp(input, { failOn: 'warning' });
    const resized = kernel === 'nearest' ? image : image.resize(size, size, { kernel: KERNELS[kernel], fit: 'fill', fastShrinkOnLoad: false });
    const { data, info } = await resized.removeAlpha().toColourspace('srgb').raw().toBuffer({ resolveWithObject: true });
    if (info.channels !== 3) return { ok: false, reason: `decoded to ${info.width}x${info.height}x${info.channels}, expected 3 channels` };
    const pixels = kernel === 'nearest' ? sampleNearest(data, info.width, info.height, size) : data;
    if (pixels.length !== size * size * 3) return { ok: false, reason: `decoded to ${info.width}x${info.height}x${info.channels}, expected ${size}x${size}x3` };
    return { ok: true, pixels };
  } catch (e) {
    return { ok: false, reason: (e as Error).message.split('\n')[0] ?? 'decode failed' };
  }
}

/** Default cap on one image file: far above any real chip (Planet's are ~20 KB), far below what would hurt. */
export const MAX_IMAGE_BYTES = 64 * 2 ** 20;

/**
 * Reads an image file with bounds: a regular file only (a FIFO would hang, /dev/zero would
 * never end; both are refused, also behind a symlink), at most `maxBytes`. Problems are
 * returned as the reason a file is a bad image.
 */
export async function readImageFile(path: string, maxBytes = MAX_IMAGE_BYTES): Promise<{ ok: true; bytes: Buffer } | { ok: false; reason: string }> {
  let fh;
  try { fh = await open(path, constants.O_RDONLY | constants.O_NONBLOCK); } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    return { ok: false, reason: code === 'ENOENT' ? 'file not found' : `cannot read: ${code ?? (e as Error).message}` };
  }
  try {
    const st = await fh.stat();
    if (!st.isFile()) return { ok: false, reason: `not a regular file (${st.isDirectory() ? 'a folder' : st.isFIFO() ? 'a FIFO' : st.isCharacterDevice() || st.isBlockDevice() ? 'a device' : 'a special file'})` };
    if (st.size > maxBytes) return { ok: false, reason: `${st.size} bytes, over the ${maxBytes}-byte limit (data.max_image_bytes)` };
    if (st.size === 0) return { ok: false, reason: 'empty file' };
    const bytes = Buffer.alloc(st.size);
    let n = 0;
    while (n < st.size) {
      const { bytesRead } = await fh.read(bytes, n, st.size - n, n);
      if (bytesRead === 0) break;
      n += bytesRead;
    }
    return { ok: true, bytes: bytes.subarray(0, n) };
  } catch (e) {
    return { ok: false, reason: `cannot read: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}` };
  } finally {
    await fh.close();
  }
}

export async function decodeFile(path: string, size: number, kernel: ResizeKernel, maxBytes = MAX_IMAGE_BYTES): Promise<DecodeResult> {
  const r = await readImageFile(path, maxBytes);
  return r.ok ? decodeImage(r.bytes, size, kernel) : r;
}

/**
 * Decodes many files into one packed buffer, `paths.length * size*size*3` bytes, keeping a
 * bounded number in flight so both cores stay busy without holding every file in memory.
 * `onProgress` is called with the number done so far.
 */
export async function decodeMany(paths: readonly string[], size: number, kernel: ResizeKernel, onProgress?: (done: number) => void, maxBytes = MAX_IMAGE_BYTES): Promise<{ pixels: Buffer; failures: Map<number, string> }> {
  const frame = size * size * 3;
  const pixels = Buffer.alloc(paths.length * frame);
  const failures = new Map<number, string>();
  const inFlight = Math.max(4, availableParallelism() * 4);
  let next = 0;
  let done = 0;
  await Promise.all(Array.from({ length: Math.min(inFlight, paths.length) }, async () => {
    while (next < paths.length) {
      const i = next++;
      const r = await decodeFile(paths[i]!, size, kernel, maxBytes);
      if (r.ok) r.pixels.copy(pixels, i * frame); else failures.set(i, r.reason);
      done++;
      if (onProgress && done % 256 === 0) onProgress(done);
    }
  }));
  onProgress?.(done);
  return { pixels, failures };
}
