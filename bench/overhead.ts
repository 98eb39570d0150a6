/**
 * Section 4: what a sweep point costs outside training. `exp run` trains each point in its own
 * `exp train` child process, which starts Node and the CLI, picks a backend, builds the model,
 * loads the ImageNet .h5, loads the dataset from the decoded cache, then per epoch saves
 * checkpoints and appends tracking events. Each is timed here in a fresh process, from dist/.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { vgg16FixtureLayers, writeKerasH5 } from '../test/model/keras-h5-writer.js';
import { synthesize } from '../src/data/synth.js';
import { cachedLoad, PLANET_IMAGES } from './data.js';
import { log, ROOT, round, startSpan, tempDir } from './measure.js';
import type { Column, Row } from './table.js';

export interface OverheadOptions {
  /** Repeats of the process-start rows (the best is kept). */
  reps: number;
  /** Epochs of the recipe, for the per-epoch checkpoint and tracking rows. */
  epochs: number;
  /** Cached-load time per image from the data section (the pixel read and the rest of
   * loadDataset); measured on a small set when absent. */
  cache?: { readMs: number; restMs: number };
}

export const OVERHEAD_COLUMNS: Column[] = [
  { key: 'name', title: 'step', align: 'left' },
  { key: 'seconds', title: 'seconds', digits: 3 },
  { key: 'in_total', title: 'in total', align: 'left' },
  { key: 'note', title: 'note', align: 'left' },
];

const TARGET_S = 5;

interface Child {
  import_ms: number;
  backend_ms: number;
  backend: string;
  build_ms: number;
  h5_ms: number;
  h5_layers: number;
  ckpt_ms: number;
  ckpt_bytes: number;
  track_ms: number;
  events: number;
}

/** Best wall time of `reps` runs of a command, in ms. */
function bestRun(args: readonly string[], reps: number): number {
  let best = Infinity;
  for (let i = 0; i < reps; i++) {
    const t0 = performance.now();
    const r = spawnSync(process.execPath, args, { cwd: ROOT, stdio: 'ignore', timeout: 60_000 });
    if (r.status !== 0) throw new Error(`node ${args.join(' ')} exited with ${r.status ?? r.signal}`);
    best = Math.min(best, performance.now() - t0);
  }
  return best;
}

export async function benchOverhead(o: OverheadOptions): Promise<{ rows: Row[]; notes: string[] }> {
  const rows: Row[] = [];
  const notes: string[] = [];
  const add = (label: string, ms: number, inTotal: boolean, note?: string): void => {
    rows.push({
      section: 'overhead',
      name: label.trim(),
      ...(label.startsWith('  ') ? { sub: true } : {}),
      seconds: round(ms / 1000, 3),
      in_total: inTotal ? 'yes' : 'no',
      ...(note ? { note } : {}),
    });
  };
  if (!existsSync(join(ROOT, 'dist', 'cli', 'main.js'))) {
    return { rows, notes: ['overhead skipped: dist/ is not built (npm run build); exp runs from dist/, so that is what is timed.'] };
  }
  log(`overhead: process start, best of ${o.reps}`);
  add('node start (node -e 0)', bestRun(['-e', '0'], o.reps), false, 'part of the next row');
  add('process start (exp --version)', bestRun([join('bin', 'exp.js'), '--version'], o.reps), true, 'Node + the CLI entry; commands load on demand');

  const dir = tempDir('overhead');
  const h5 = join(dir, 'vgg16_notop.h5');
  const end = startSpan();
  await writeKerasH5(h5, vgg16FixtureLayers());
  add('write full-size Keras .h5 (setup)', end().ms, false, `${(statSync(h5).size / 1e6).toFixed(1)} MB, test writer`);

  log('overhead: a fresh `exp train`-like process (import, backend, build, .h5, checkpoint, tracking)');
  const r = spawnSync(process.execPath, [join(ROOT, 'bench', 'overhead-child.mjs'), h5, join(dir, 'run'), String(o.epochs)], {
    cwd: ROOT,
    encoding: 'utf8',
    timeout: 300_000,
  });
  const last = r.stdout?.trim().split('\n').at(-1) ?? '';
  if (r.status !== 0 || !last.startsWith('{')) {
    notes.push(`overhead child failed: ${r.stderr?.trim().split('\n').slice(-3).join(' | ') ?? r.error?.message}`);
  } else {
    const c = JSON.parse(last) as Child;
    add('import the trainer (dist/train/run.js: tfjs, sharp, vega)', c.import_ms, true, 'what `exp train` loads on top');
    add(`backend init (selectBackend auto -> ${c.backend})`, c.backend_ms, true);
    add('model build (VGG16 at 128 + head)', c.build_ms, true);
    add('load Keras .h5 (loadKerasWeights)', c.h5_ms, true, `${c.h5_layers} layers`);
    let cache = o.cache;
    if (cache === undefined) {
      log('overhead: cached load on 200 synthetic images');
      const d = tempDir('overhead-data');
      await synthesize({ outDir: d, count: 200, seed: 1 });
      const c = await cachedLoad(d);
      cache = { readMs: c.read.ms / 200, restMs: (c.hit.ms - c.read.ms) / 200 };
    }
    const planet = PLANET_IMAGES.toLocaleString('en-US');
    add(
      'dataset: read the decoded cache (Planet size)',
      cache.readMs * PLANET_IMAGES,
      true,
      `extrapolated: ${planet} x ${cache.readMs.toFixed(3)} ms, ${((PLANET_IMAGES * 128 * 128 * 3) / 1e9).toFixed(1)} GB from the page cache`,
    );
    add('dataset: CSV, stat + hash every image (fingerprint)', cache.restMs * PLANET_IMAGES, true, `extrapolated: ${planet} x ${cache.restMs.toFixed(3)} ms`);
    add('checkpoint save (model + Adam)', c.ckpt_ms, true, `${(c.ckpt_bytes / 1e6).toFixed(0)} MB, once`);
    add(`tracking (${c.events} events, fsync each)`, c.track_ms, true, `${o.epochs} epochs`);
    const fixed = rows.filter((x) => x.in_total === 'yes').reduce((a, x) => a + (x.seconds as number), 0);
    rows.push({
      section: 'overhead',
      name: 'total per sweep point',
      seconds: round(fixed, 2),
      in_total: '',
      note: `target < ${TARGET_S} s: ${fixed < TARGET_S ? 'met' : 'missed'}`,
    });
    const more = 2 * o.epochs - 1;
    rows.push({
      section: 'overhead',
      name: `+ checkpoints of ${o.epochs} epochs`,
      sub: true,
      seconds: round((more * c.ckpt_ms) / 1000, 2),
      in_total: '',
      note: `up to ${more} more saves (last every epoch, best when improved)`,
    });
  }
  return { rows, notes };
}
