/**
 * Section 1, the data pipeline: JPEG decode + resize (the recipe's 256x256 -> 128x128 nearest)
 * on a synthetic Planet-style set, with libuv's pool at several sizes; where decode time goes;
 * the decoded cache; batch assembly and augmentation on each backend.
 */
import * as tf from '@tensorflow/tfjs';
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { availableParallelism } from 'node:os';
import { join } from 'node:path';
import sharp from 'sharp';
import { selectBackend } from '../src/backend/select.js';
import { applyAugment, drawParams } from '../src/data/augment.js';
import { decodeImage, decodeMany } from '../src/data/decode.js';
import { readCache } from '../src/data/cache.js';
import { loadDataset, type Dataset } from '../src/data/planet.js';
import { synthesize } from '../src/data/synth.js';
import { makeBatch } from '../src/core/batches.js';
import { recipeConfig } from './config.js';
import type { BenchBackend } from './machine.js';
import { findPython, log, ROOT, round, runPythonJson, startSpan, tempDir, type Span } from './measure.js';
import type { Column, Row } from './table.js';

/** Planet's train_v2.csv has 40,479 images: the cached-load figure is extrapolated to it. */
export const PLANET_IMAGES = 40_479;
/** libuv's default pool size, when UV_THREADPOOL_SIZE is unset. */
const UV_DEFAULT = 4;

export interface DataOptions {
  images: number;
  /** Images for the one-at-a-time breakdown rows. */
  sequential: number;
  /** UV_THREADPOOL_SIZE values to run decodeMany with in a child process. */
  poolSizes: number[];
  augmentReps: Record<BenchBackend, number>;
  backends: BenchBackend[];
}

export const DATA_COLUMNS: Column[] = [
  { key: 'name', title: 'stage', align: 'left' },
  { key: 'backend', title: 'where', align: 'left' },
  { key: 'img_s', title: 'img/s' },
  { key: 'ms_per_img', title: 'ms/img', digits: 3 },
  { key: 'cpu_ms_per_img', title: 'CPU ms/img', digits: 3 },
  { key: 'main_ms_per_img', title: 'main thread ms/img', digits: 3 },
  { key: 'cores', title: 'cores', digits: 2 },
  { key: 'note', title: 'note', align: 'left' },
];

/** A row; a name indented by two spaces is a part of the row above (`sub` in the JSON). */
const row = (label: string, where: string, n: number, s: Pick<Span, 'ms'> & Partial<Span>, note?: string): Row => ({
  section: 'data',
  name: label.trim(),
  ...(label.startsWith('  ') ? { sub: true } : {}),
  backend: where,
  n,
  img_s: round((n * 1000) / s.ms, 1),
  ms_per_img: round(s.ms / n, 4),
  cpu_ms_per_img: s.cpuMs === undefined ? null : round(s.cpuMs / n, 4),
  main_ms_per_img: s.mainMs === undefined ? null : round(s.mainMs / n, 4),
  cores: s.cpuMs === undefined ? null : round(s.cpuMs / s.ms, 2),
  ...(note ? { note } : {}),
});

/** Times `f` on each buffer in turn, one in flight: the per-image cost without overlap. */
async function oneAtATime(bufs: readonly Buffer[], f: (b: Buffer) => Promise<unknown>): Promise<Span> {
  await f(bufs[0]!);
  const end = startSpan();
  for (const b of bufs) await f(b);
  return end();
}

/**
 * loadDataset on a Planet-format folder twice with a fresh cache: the first call decodes and
 * writes the decoded cache, the second reads it (from the page cache: the file was just written).
 */
export async function cachedLoad(dir: string): Promise<{ miss: Span; hit: Span; read: Span; ds: Dataset }> {
  const cfg = recipeConfig(dir);
  const cacheDir = tempDir('cache');
  let end = startSpan();
  await loadDataset(cfg.data, { cacheDir });
  const miss = end();
  end = startSpan();
  const ds = await loadDataset(cfg.data, { cacheDir });
  const hit = end();
  // The pixel file alone; the rest of a hit is the CSV, listing, and a stat + hash of every image.
  end = startSpan();
  readCache(ds.report.cache.path, ds.names.length, ds.size);
  return { miss, hit, read: end(), ds };
}

export async function benchData(o: DataOptions): Promise<{ rows: Row[]; notes: string[] }> {
  const rows: Row[] = [];
  const notes: string[] = [];
  const dir = tempDir('data');
  log(`data: synthesizing ${o.images} 256x256 JPEGs in ${dir}`);
  let end = startSpan();
  await synthesize({ outDir: dir, count: o.images, seed: 1 });
  rows.push(row('synthesize (render + JPEG q90 encode)', 'sharp', o.images, end(), 'setup, not part of training'));
  const files = Array.from({ length: o.images }, (_, i) => join(dir, 'train-jpg', `train_${i}.jpg`));

  // As exp runs it: decodeMany in this process, files read from the (warm) page cache.
  await decodeMany(files.slice(0, 32), 128, 'nearest');
  end = startSpan();
  await decodeMany(files, 128, 'nearest');
  const pool = Number(process.env.UV_THREADPOOL_SIZE) || UV_DEFAULT;
  const main = end();
  rows.push(row('decodeMany 256->128 nearest', `sharp, UV pool ${pool}`, o.images, main, 'as exp runs it'));

  for (const size of o.poolSizes) {
    log(`data: decodeMany with UV_THREADPOOL_SIZE=${size} (child process)`);
    const r = spawnSync(process.execPath, ['--import', 'tsx', join(ROOT, 'bench', 'decode-child.ts'), dir, String(o.images)], {
      cwd: ROOT,
      encoding: 'utf8',
      env: { ...process.env, UV_THREADPOOL_SIZE: String(size) },
      timeout: 300_000,
    });
    const last = r.stdout?.trim().split('\n').at(-1) ?? '';
    if (r.status !== 0 || !last.startsWith('{')) {
      rows.push({
        section: 'data',
        name: 'decodeMany 256->128 nearest',
        backend: `sharp, UV pool ${size}`,
        img_s: null,
        note: `child failed: ${r.stderr?.trim().split('\n').at(-1) ?? r.error?.message}`,
      });
      continue;
    }
    rows.push(
      row('decodeMany 256->128 nearest', `sharp, UV pool ${size}`, o.images, JSON.parse(last) as Span, size === 1 ? '1 decode thread' : 'child process'),
    );
  }

  // Where a decode's time goes: the same pipeline one image at a time, and pieces of it.
  const seq = files.slice(0, o.sequential);
  const bufs = seq.map((f) => readFileSync(f));
  log(`data: decode breakdown, ${seq.length} images one at a time`);
  rows.push(
    row(
      '  read file (fs.readFile)',
      'node',
      seq.length,
      await (async () => {
        await readFile(seq[0]!);
        const e = startSpan();
        for (const f of seq) await readFile(f);
        return e();
      })(),
    ),
  );
  rows.push(row('  open + parse header (metadata)', 'sharp', seq.length, await oneAtATime(bufs, (b) => sharp(b).metadata()), 'fixed per-image cost'));
  rows.push(row('  decode only, 256x256 raw', 'sharp', seq.length, await oneAtATime(bufs, (b) => sharp(b).raw().toBuffer())));
  // The same decoder on 16x the pixels: per pixel it costs what a 256x256 image would if the
  // per-image overhead were zero, so the gap to the row above is that overhead.
  const big = await sharp(await sharp(bufs[0]!).resize(1024, 1024).raw().toBuffer(), { raw: { width: 1024, height: 1024, channels: 3 } })
    .jpeg({ quality: 90 })
    .toBuffer();
  const bigN = Math.max(2, Math.round(seq.length / 16));
  const bigSpan = await oneAtATime(
    Array.from({ length: bigN }, () => big),
    (b) => sharp(b).raw().toBuffer(),
  );
  rows.push(row('  decode only, 1024x1024 raw, per 256x256', 'sharp', bigN * 16, bigSpan, 'pixel cost without per-image overhead'));
  rows.push(
    row('  decode + resize (decodeImage)', 'sharp', seq.length, await oneAtATime(bufs, (b) => decodeImage(b, 128, 'nearest')), 'the recipe, 1 in flight'),
  );
  rows.push(
    row(
      '  what-if: shrink-on-load (DCT 1/2)',
      'sharp',
      seq.length,
      await oneAtATime(bufs, (b) => sharp(b).resize(128, 128, { kernel: 'nearest', fit: 'fill' }).raw().toBuffer()),
      'not the recipe: other pixels',
    ),
  );

  const py = findPython('PIL');
  if (py === undefined) {
    notes.push('Pillow reference skipped: no Python with PIL (pip install pillow, or set EXP_BENCH_PYTHON).');
  } else {
    log(`data: Pillow reference (${py})`);
    const r = runPythonJson<{ pil: string; ms: number; cpu_ms: number; n: number; big_ms: number; big_cpu_ms: number; big_n: number }>(py, [
      join(ROOT, 'bench', 'pillow_decode.py'),
      dir,
      String(o.images),
    ]);
    if (r.ok) {
      const v = r.value,
        where = `Pillow ${v.pil}, 1 process`;
      rows.push(row('reference: Pillow decode + resize', where, v.n, { ms: v.ms, cpuMs: v.cpu_ms }, 'bytes in memory, 1 core'));
      rows.push(
        row('  Pillow decode only, 1024x1024, per 256x256', where, v.big_n, { ms: v.big_ms, cpuMs: v.big_cpu_ms }, 'pixel cost without per-image overhead'),
      );
    } else {
      notes.push(`Pillow reference failed: ${r.error}`);
    }
  }

  const cfg = recipeConfig(dir);
  const { miss, hit, read, ds } = await cachedLoad(dir);
  rows.push(row('loadDataset, cache miss', 'sharp + fs', o.images, miss, 'decode + stat + write cache'));
  const mb = (o.images * 128 * 128 * 3) / 1e6;
  rows.push(
    row(
      'loadDataset, cache hit',
      'fs',
      o.images,
      hit,
      `Planet's ${PLANET_IMAGES.toLocaleString('en-US')}: ~${(((hit.ms / o.images) * PLANET_IMAGES) / 1000).toFixed(1)} s`,
    ),
  );
  rows.push(row('  of which: read the pixel file', 'fs', o.images, read, `${Math.round(mb / (read.ms / 1000))} MB/s, page cache`));
  rows.push(row('  of which: CSV, list, stat + hash each file', 'fs', o.images, { ms: hit.ms - read.ms }, 'the fingerprint'));

  // Per-batch work on the backend: batch assembly, then augmentation (rotation + flips).
  const idx = Array.from({ length: 32 }, (_, i) => i % ds.names.length);
  const aug = { ...cfg.augmentation, rotation_range: 90, horizontal_flip: true, vertical_flip: true };
  for (const b of o.backends) {
    await selectBackend(b);
    const reps = o.augmentReps[b];
    log(`data: makeBatch + applyAugment on ${b} (${reps} batches of 32)`);
    const mk = (): void => {
      const { x, y } = makeBatch(ds, idx);
      x.dataSync();
      tf.dispose([x, y]);
    };
    mk();
    end = startSpan();
    for (let r = 0; r < reps; r++) mk();
    rows.push(row('makeBatch (uint8 -> float32 batch)', b, 32 * reps, end(), 'batch 32'));
    const { x, y } = makeBatch(ds, idx);
    const run = (k: number): void => {
      const out = applyAugment(x, drawParams(aug, 32, 1, 1, k), aug.fill_mode);
      out.dataSync();
      out.dispose();
    };
    run(0);
    end = startSpan();
    for (let r = 1; r <= reps; r++) run(r);
    rows.push(row('applyAugment (rotation + flips)', b, 32 * reps, end(), 'batch 32 at 128'));
    tf.dispose([x, y]);
  }

  const sharpCpu = main.cpuMs / o.images,
    jsMs = main.mainMs / o.images;
  const cores = availableParallelism();
  notes.push(
    `decodeMany used ${(main.cpuMs / main.ms).toFixed(2)} cores and ${sharpCpu.toFixed(2)} ms of CPU per image, ${jsMs.toFixed(2)} ms of it on the JS thread: on ${cores} idle cores that is at most ~${Math.round((cores * 1000) / sharpCpu)} img/s, and the JS thread alone caps it at ~${Math.round(1000 / jsMs)} img/s.`,
    'The 3,000 img/s goal on 2 cores needs <= 0.67 ms of CPU per image: about what decoding the pixels alone costs here, with either library.',
  );
  const cpuOf = (name: string): number | undefined => {
    const v = rows.find((r) => r.name === name)?.cpu_ms_per_img;
    return typeof v === 'number' ? v : undefined;
  };
  const [recipe, pixels] = [cpuOf('decode + resize (decodeImage)'), cpuOf('decode only, 1024x1024 raw, per 256x256')];
  const [pilRecipe, pilPixels] = [cpuOf('reference: Pillow decode + resize'), cpuOf('Pillow decode only, 1024x1024, per 256x256')];
  if (recipe !== undefined && pixels !== undefined) {
    const pil = pilRecipe !== undefined && pilPixels !== undefined ? `; Pillow's is ~${Math.max(0, pilRecipe - pilPixels).toFixed(2)} ms` : '';
    notes.push(
      `One image at a time, the recipe costs ${recipe.toFixed(2)} ms of CPU, of which ~${pixels.toFixed(2)} ms is decoding pixels (the 1024x1024 row); the other ~${(recipe - pixels).toFixed(2)} ms is per-image overhead in sharp/libvips${pil}.`,
    );
  }
  const pil = rows.find((r) => r.name.startsWith('reference: Pillow'));
  if (pil && typeof pil.cpu_ms_per_img === 'number') {
    notes.push(
      `Pillow needs ${pil.cpu_ms_per_img.toFixed(2)} ms of CPU per image: ${(sharpCpu / pil.cpu_ms_per_img).toFixed(1)}x less than sharp here; ${cores} Pillow processes would reach ~${Math.round((cores * 1000) / pil.cpu_ms_per_img)} img/s on idle cores.`,
    );
  }
  return { rows, notes };
}
