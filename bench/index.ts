/**
 * `npm run bench`: how fast exp is on this machine, section by section, as tables (or, with
 * --json, one JSON array of rows). A benchmark, not a test: it asserts nothing.
 *
 *   npm run bench                          everything, ~12 min on 2 cores
 *   npm run bench -- --quick               fewer images, batch 8, one step each: a smoke check
 *   npm run bench -- --only data,overhead  some sections (data | model | torch | epoch | overhead | store | sweep | report | cache | cache-dtype | adaptive)
 *   npm run bench -- --json                rows as JSON on stdout (progress stays on stderr)
 *   npm run bench -- --only model,torch --batch 128 --backends tensorflow
 *                                          the recipe's shape, exp native against PyTorch and Keras
 *   npm run bench -- --only epoch          an epoch end to end (augmentation, validation) in exp, Keras, PyTorch
 *   npm run bench -- --only adaptive       issue 20: simulated ASHA/Hyperband/median on a kept 16x15 grid, real ASHA, TPE vs random (~25 min, ~12 reused)
 *
 * Environment: EXP_BENCH_PYTHON picks the Python for numpy, Pillow and PyTorch (default: the
 * first of .venv-bench/bin/python and python3 that has the module).
 */
import { loadavg } from 'node:os';
import { benchConvGrad } from './backend.js';
import { benchData, DATA_COLUMNS } from './data.js';
import { benchEpoch, EPOCH_COLUMNS } from './epoch.js';
import { BENCH_BACKENDS, describeMachine, machineHeader, machineRow, type BenchBackend } from './machine.js';
import { log, removeTempDirs, round, tempDir } from './measure.js';
import { addPeakShare, benchModel, MODEL_COLUMNS, PROFILE_COLUMNS, profileRows } from './model.js';
import { OVERHEAD_COLUMNS, benchOverhead } from './overhead.js';
import { STORE_COLUMNS, benchStore } from './store.js';
import { SWEEP_COLUMNS, benchSweep } from './sweep.js';
import { REPORT_COLUMNS, benchReport } from './report.js';
import { benchPeak, bestPeaks, machinePeak } from './peak.js';
import { table, type Row } from './table.js';
import { benchKeras, benchTorch, comparisonRows, TORCH_COLUMNS } from './torch.js';
import { benchCacheDtype, benchFeatureCache, CACHE_COLUMNS, DTYPE_COLUMNS } from './feature-cache.js';
import { ADAPTIVE_COLUMNS, benchAdaptive } from './adaptive.js';

const SECTIONS = ['data', 'model', 'torch', 'epoch', 'overhead', 'store', 'sweep', 'report', 'cache', 'cache-dtype', 'adaptive'] as const;
type Section = (typeof SECTIONS)[number];

const USAGE = `usage: npm run bench -- [--quick] [--json] [--only ${SECTIONS.join('|')}[,...]] [--batch N] [--backends ${BENCH_BACKENDS.join('|')}[,...]]`;

interface Args {
  quick: boolean;
  json: boolean;
  only: Set<Section>;
  batch?: number;
  backends?: BenchBackend[];
}

function parseArgs(argv: readonly string[]): Args | string {
  const a: Args = { quick: false, json: false, only: new Set(SECTIONS) };
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    if (arg === '--quick') a.quick = true;
    else if (arg === '--json') a.json = true;
    else if (arg === '--only' || arg.startsWith('--only=')) {
      const v = arg === '--only' ? argv[++i] : arg.slice('--only='.length);
      const names = (v ?? '').split(',').filter(Boolean);
      const bad = names.filter((n) => !(SECTIONS as readonly string[]).includes(n));
      if (names.length === 0 || bad.length > 0) return `--only takes ${SECTIONS.join(', ')} (comma-separated)${bad.length ? `; got ${bad.join(', ')}` : ''}`;
      a.only = new Set(names as Section[]);
    } else if (arg === '--batch') {
      const n = Number(argv[++i]);
      if (!Number.isInteger(n) || n < 1) return '--batch takes a positive integer (the recipe uses 128)';
      a.batch = n;
    } else if (arg === '--backends') {
      const names = (argv[++i] ?? '').split(',').filter(Boolean);
      const bad = names.filter((n) => !(BENCH_BACKENDS as readonly string[]).includes(n));
      if (names.length === 0 || bad.length > 0) return `--backends takes ${BENCH_BACKENDS.join(', ')} (comma-separated)`;
      a.backends = names as BenchBackend[];
    } else if (arg === '--help' || arg === '-h') return '';
    else return `unknown option '${arg}'`;
  }
  return a;
}

/** Iterations: the full run keeps to ~12 minutes on 2 busy cores (the epoch section is a third of it); --quick to a few. */
function plan(quick: boolean, backends: BenchBackend[], batchArg?: number) {
  const batch = batchArg ?? (quick ? 8 : 32);
  return {
    data: {
      images: quick ? 200 : 1000,
      sequential: quick ? 50 : 300,
      poolSizes: quick ? [1] : [1, 2, 8],
      augmentReps: { tensorflow: quick ? 1 : 5, wasm: quick ? 1 : 3, cpu: 1 },
      backends,
    },
    peakReps: quick ? 1 : 3,
    model: {
      batch,
      imageSize: 128,
      trainSteps: { tensorflow: quick ? 1 : 3, wasm: 1, cpu: 0 },
      inferBatches: { tensorflow: quick ? 1 : 3, wasm: 1, cpu: 1 },
      cpuInferImages: quick ? 1 : 2,
      backends,
    },
    convGrad: !quick,
    torch: { batch, imageSize: 128, trainSteps: quick ? 1 : 3, inferBatches: quick ? 1 : 3 },
    // The recipe's own batch (128) unless --batch says otherwise; 640 images = 448 train + 192 val.
    epoch: { size: quick ? 64 : 128, batch: batchArg ?? (quick ? 32 : 128), count: quick ? 200 : 640, epochs: 2 },
    overhead: { reps: quick ? 1 : 3, epochs: 15 },
    store: { sizes: quick ? [100, 1000] : [1000, 10000], reps: quick ? 1 : 3, gridSide: 100 },
    sweep: { points: 4, epochs: quick ? 1 : 2 },
    report: { sizes: quick ? [100] : [1000] },
    // The issue-21 sweep: 8 points at 128 px, batch 128, 1,000 images, 3 epochs (~40 min on 2 cores); --quick: 2 tiny points.
    cache: quick
      ? { size: 32, count: 96, batch: 16, epochs: 2, lrs: [0.001], units: [64, 128] }
      : { size: 128, count: 1000, batch: batchArg ?? 128, epochs: 3, lrs: [0.001, 0.0005, 0.00025, 0.0001], units: [64, 128] },
    // Issue 20's figures: a 16-point x 15-epoch grid at 32 px (recorded once, kept in .cache/), real ASHA, TPE vs random; --quick: 4 x 3.
    adaptive: quick
      ? { quick, lrs: [0.003, 0.0003], units: [16, 64], dropouts: [0], epochs: 3, count: 120, searchPoints: 4, searchEpochs: 2 }
      : { quick, lrs: [0.003, 0.001, 0.0003, 0.0001], units: [16, 64], dropouts: [0, 0.5], epochs: 15, count: 240, searchPoints: 12, searchEpochs: 5 },
  };
}

async function main(argv: readonly string[]): Promise<number> {
  const args = parseArgs(argv);
  if (typeof args === 'string') {
    process.stderr.write(`${args ? `bench: ${args}\n` : ''}${USAGE}\n`);
    return args ? 2 : 0;
  }
  const t0 = performance.now();
  const out = (s: string): void => {
    if (!args.json) process.stdout.write(`${s}\n`);
  };
  const rows: Row[] = [];
  const section = async (name: string, f: () => Promise<void>): Promise<void> => {
    try {
      await f();
    } catch (e) {
      // A benchmark reports what it could measure: a failed section is a note, not a crash.
      const msg = `${name} failed: ${(e as Error).stack ?? String(e)}`;
      rows.push({ section: name, name: 'error', error: msg });
      out(`\n## ${name}\n  ${msg}`);
    }
  };

  log('probing backends');
  const machine = await describeMachine();
  rows.push(machineRow(machine));
  out(machineHeader(machine));
  const backends = BENCH_BACKENDS.filter((b) => machine.backends[b] !== undefined && (args.backends === undefined || args.backends.includes(b)));
  const p = plan(args.quick, backends, args.batch);
  if (args.quick) out('--quick: fewer images, batch 8 and one step per backend; a smoke check, not figures to quote');

  let cache: { readMs: number; restMs: number } | undefined;
  if (args.only.has('data')) {
    await section('data', async () => {
      const d = await benchData(p.data);
      rows.push(...d.rows);
      const ms = (name: string): unknown => d.rows.find((r) => r.name === name)?.ms_per_img;
      const read = ms('of which: read the pixel file'),
        rest = ms('of which: CSV, list, stat + hash each file');
      if (typeof read === 'number' && typeof rest === 'number') cache = { readMs: read, restMs: rest };
      out(table(`1. Data pipeline: ${p.data.images} synthetic 256x256 JPEGs -> 128x128 RGB (nearest)`, DATA_COLUMNS, d.rows, d.notes));
    });
  }

  const modelRows: Row[] = [];
  if (args.only.has('model')) {
    await section('model', async () => {
      // The peak is measured before and after the model rows, and the better kept: on a shared
      // machine one measurement can land in a busy moment.
      const before = await benchPeak(backends, p.peakReps);
      const m = await benchModel(p.model);
      const peakRows = bestPeaks(before, await benchPeak(backends, p.peakReps));
      rows.push(...peakRows);
      const peak = machinePeak(peakRows);
      if (peak) addPeakShare(m.rows, peak.gflop_s);
      modelRows.push(...m.rows);
      rows.push(...m.rows);
      const notes = [
        `FLOP per image from our own count of the model's Conv2D and Dense layers: ${(m.flops.forward / 1e9).toFixed(2)} GFLOP forward, ${(m.flops.train / 1e9).toFixed(2)} per training image (VGG16's published figures: ~10.0 and ~11.6).`,
        peak ? `% peak: of ${peak.gflop_s} GFLOP/s, the best matmul measured in this run, ${peak.from}.` : 'no matmul peak measured: % peak left out.',
        "train: the trainer's own step (frozen blocks outside the gradient tape, then optimizer.minimize over the trainable variables) after 2 warm-up steps, on one fixed batch (no augmentation or batch assembly: see sections 1 and 3b); infer: model.predict after a warm-up batch. cores = CPU time / wall time.",
        ...m.rows.map(
          (r) =>
            `${r.backend}: ${r.train_step_s ? `train steps ${JSON.stringify(r.train_step_s)} s (warm-up ${r.warmup_s} s; one more step is profiled, untimed), ` : ''}inference batches ${JSON.stringify(r.infer_batch_s)} s`,
        ),
      ];
      out(
        table(
          '2a. Matmul peak (float32, 2048x2048x2048)',
          [
            { key: 'name', title: 'kernel', align: 'left' },
            { key: 'backend', title: 'library', align: 'left' },
            { key: 'threads', title: 'threads' },
            { key: 'gflop_s', title: 'GFLOP/s', digits: 1 },
            { key: 'note', title: 'note', align: 'left' },
          ],
          peakRows,
        ),
      );
      out(table(`2b. Model: VGG16 at ${p.model.imageSize}, batch ${p.model.batch}, blocks 1-4 frozen, Adam`, MODEL_COLUMNS, m.rows, notes));
      const prof = profileRows(m.profiles, 8);
      rows.push(...prof);
      out(
        table('2c. Where a training step goes (tf.profile of one more step after the timed ones)', PROFILE_COLUMNS, prof, [
          "Indented: kernels run inside the kernel above (exp's wasm conv gradients are built from other kernels; Identity = inputs saved for the backward pass).",
          'Top-level times add up to the step\'s kernel time; "outside kernels" is the rest of the wall time.',
        ]),
      );
      if (p.convGrad && backends.includes('wasm')) {
        log('model: wasm conv2d gradients at block5 size (bench/backend.ts)');
        const cg = (await benchConvGrad()).map((r): Row => ({ ...r, section: 'convgrad' }));
        rows.push(...cg);
        out(
          table(
            '2d. wasm Conv2D gradients at block5 size (one op, 9.66 GFLOP; best of reps)',
            [
              { key: 'name', title: 'op', align: 'left' },
              { key: 'shape', title: 'shape', align: 'left' },
              { key: 'ms', title: 'ms', digits: 0 },
              { key: 'cpuMs', title: 'CPU ms', digits: 0 },
              { key: 'gflops', title: 'GFLOP/s', digits: 2 },
              { key: 'reps', title: 'reps' },
              { key: 'note', title: 'note', align: 'left' },
            ],
            cg,
          ),
        );
      }
    });
  }

  if (args.only.has('torch')) {
    await section('torch', async () => {
      const t = benchTorch(p.torch);
      const notes = [...t.notes];
      const torchRow = t.rows[0];
      const cmp = torchRow ? comparisonRows(modelRows, torchRow) : [];
      if (torchRow && cmp.length === 0) notes.push('no exp rows to compare with: run the model section too (--only model,torch).');
      if (torchRow) {
        notes.push('x torch = exp img/s / PyTorch img/s (1 = as fast).');
        const native = cmp.find((r) => r.backend === 'tensorflow');
        const perCore = (img: unknown, cores: unknown): number | undefined =>
          typeof img === 'number' && typeof cores === 'number' && cores > 0 ? img / cores : undefined;
        const [et, tt, ei, ti] = [
          perCore(native?.train_img_s, native?.train_cores),
          perCore(torchRow.train_img_s, torchRow.train_cores),
          perCore(native?.infer_img_s, native?.infer_cores),
          perCore(torchRow.infer_img_s, torchRow.infer_cores),
        ];
        if (et && tt && ei && ti) {
          notes.push(
            `The two ran at different moments of a shared machine (see cores). Per CPU-second instead: exp tensorflow / PyTorch = ${(et / tt).toFixed(2)} train, ${(ei / ti).toFixed(2)} inference (biased against PyTorch: its OpenMP threads spin while waiting, which counts as CPU time).`,
          );
        }
      }
      // Keras, the recipe's own framework, on the same libtensorflow: exp / Keras per row.
      const k = benchKeras(p.torch);
      notes.push(...k.notes);
      const kerasRow = k.rows[0];
      if (kerasRow) {
        for (const c of cmp) {
          const r = (a: unknown, b: unknown): string => (typeof a === 'number' && typeof b === 'number' && b > 0 ? (a / b).toFixed(2) : '-');
          c.note = `x keras: train ${r(c.train_img_s, kerasRow.train_img_s)}, infer ${r(c.infer_img_s, kerasRow.infer_img_s)}`;
        }
      }
      rows.push(...t.rows, ...k.rows, ...cmp);
      out(table(`3. PyTorch and Keras side by side (same workload, batch ${p.torch.batch})`, TORCH_COLUMNS, [...t.rows, ...k.rows, ...cmp], notes));
    });
  }

  if (args.only.has('epoch')) {
    await section('epoch', async () => {
      if (!backends.includes('tensorflow')) {
        // Two epochs at 128 px on wasm take the better part of an hour: not a figure worth the wait.
        out('\n## 3b. An epoch end to end\n  skipped: it needs the native tensorflow backend (see `exp backends`).');
        return;
      }
      const e = benchEpoch({ ...p.epoch, backend: 'tensorflow' });
      rows.push(...e.rows);
      out(table(`3b. An epoch end to end: the recipe at ${p.epoch.size} px, batch ${p.epoch.batch}, ${p.epoch.count} images`, EPOCH_COLUMNS, e.rows, e.notes));
    });
  }

  if (args.only.has('overhead')) {
    await section('overhead', async () => {
      const o = await benchOverhead({ ...p.overhead, ...(cache === undefined ? {} : { cache }) });
      rows.push(...o.rows);
      out(table('4. Overhead per sweep point outside training (each `exp train` is a fresh process)', OVERHEAD_COLUMNS, o.rows, o.notes));
    });
  }

  if (args.only.has('store')) {
    await section('store', async () => {
      const s = await benchStore(p.store);
      rows.push(...s.rows);
      out(table('5. The run store at scale (whole processes)', STORE_COLUMNS, s.rows, s.notes));
    });
  }

  if (args.only.has('sweep')) {
    await section('sweep', async () => {
      const s = await benchSweep(p.sweep);
      rows.push(...s.rows);
      out(
        table(
          `6. A ${p.sweep.points}-point sweep: local workers and the queue (tiny points: 32x32, ${p.sweep.epochs} epoch${p.sweep.epochs === 1 ? '' : 's'})`,
          SWEEP_COLUMNS,
          s.rows,
          s.notes,
        ),
      );
    });
  }

  if (args.only.has('report')) {
    await section('report', async () => {
      const r = await benchReport(p.report);
      rows.push(...r.rows);
      out(table('7. exp report on a sweep of filled run folders: the page and its load in headless Chromium', REPORT_COLUMNS, r.rows, r.notes));
    });
  }

  if (args.only.has('cache')) {
    await section('cache', async () => {
      const c = benchFeatureCache(p.cache);
      rows.push(...c.rows);
      out(
        table(
          `8. The shared feature cache: a ${p.cache.lrs.length * p.cache.units.length}-point sweep at ${p.cache.size} px, dihedral, batch ${p.cache.batch}`,
          CACHE_COLUMNS,
          c.rows,
          c.notes,
        ),
      );
    });
  }

  if (args.only.has('cache-dtype')) {
    await section('cache-dtype', async () => {
      const c = benchCacheDtype(p.cache);
      rows.push(...c.rows);
      out(table('8b. The feature cache stored as float32 or float16: disk and F2', DTYPE_COLUMNS, c.rows, c.notes));
    });
  }

  if (args.only.has('adaptive')) {
    await section('adaptive', async () => {
      const a = benchAdaptive(p.adaptive, tempDir('adaptive'));
      rows.push(...a.rows);
      const n = p.adaptive.lrs.length * p.adaptive.units.length * p.adaptive.dropouts.length;
      out(
        table(
          `9. Adaptive sweeps: a ${n}-point x ${p.adaptive.epochs}-epoch grid, simulated schedulers, real ASHA, TPE vs random`,
          ADAPTIVE_COLUMNS,
          a.rows,
          a.notes,
        ),
      );
    });
  }

  removeTempDirs();
  const load = loadavg().map((l) => +l.toFixed(2));
  rows.push({ section: 'machine', name: 'end', load_end: load, seconds: round((performance.now() - t0) / 1000, 1) });
  out(`\nload average at end: ${load.join(' ')}; bench took ${((performance.now() - t0) / 1000).toFixed(0)} s`);
  if (args.json) process.stdout.write(`${JSON.stringify(rows, null, 1)}\n`);
  return 0;
}

process.exitCode = await main(process.argv.slice(2));
// libtensorflow's and wasm's threads can keep the process alive; the bench is done.
process.exit();
