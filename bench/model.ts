/**
 * Section 2, model throughput: the recipe's workload (VGG16 at 128x128, blocks 1-4 frozen,
 * Flatten/Dense(128)/Dense(17), Adam, binary cross-entropy) on each backend: training steps as
 * trainLoop runs them (optimizer.minimize over the trainable variables; augmentation and batch
 * assembly are timed in the data section, not here) and inference (predict, training false).
 * The last timed training step runs under tf.profile, for the per-kernel table.
 */
import * as tf from '@tensorflow/tfjs';
import { selectBackend } from '../src/backend/select.js';
import { buildModel } from '../src/model/vgg16.js';
import { makeOptimizer, trainStep } from '../src/train/loop.js';
import { splitFrozen } from '../src/model/frozen.js';
import { recipeConfig } from './config.js';
import { countFlops } from './flops.js';
import type { BenchBackend } from './machine.js';
import { log, round, startSpan, type Span } from './measure.js';
import { profileStep, type StepProfile } from './profile.js';
import type { Column, Row } from './table.js';

export interface ModelOptions {
  batch: number;
  imageSize: number;
  /** Timed training steps after one warm-up step; 0 = not trained on this backend. */
  trainSteps: Record<BenchBackend, number>;
  /** Timed inference batches (of `batch` images, or `cpuInferImages` on cpu). */
  inferBatches: Record<BenchBackend, number>;
  cpuInferImages: number;
  backends: BenchBackend[];
}

export const MODEL_COLUMNS: Column[] = [
  { key: 'backend', title: 'backend', align: 'left' },
  { key: 'threads', title: 'thr' },
  { key: 'batch', title: 'batch' },
  { key: 'train_img_s', title: 'train img/s', digits: 2 },
  { key: 'train_gflop_s', title: 'GFLOP/s', digits: 1 },
  { key: 'train_peak_pct', title: '% peak', digits: 1 },
  { key: 'train_cores', title: 'cores', digits: 2 },
  { key: 'infer_img_s', title: 'infer img/s', digits: 2 },
  { key: 'infer_gflop_s', title: 'GFLOP/s', digits: 1 },
  { key: 'infer_peak_pct', title: '% peak', digits: 1 },
  { key: 'infer_cores', title: 'cores', digits: 2 },
  { key: 'note', title: 'note', align: 'left' },
];

const NTAGS = 17;

export interface ModelResult {
  rows: Row[];
  profiles: { backend: BenchBackend; profile: StepProfile; batch: number }[];
  flops: { forward: number; train: number };
}

export async function benchModel(o: ModelOptions): Promise<ModelResult> {
  const cfg = recipeConfig('/nonexistent');
  const rows: Row[] = [];
  const profiles: ModelResult['profiles'] = [];
  let flops = { forward: 0, train: 0 };
  for (const b of o.backends) {
    const info = await selectBackend(b);
    const model = buildModel({ imageSize: o.imageSize, nTags: NTAGS, trainableBlocks: cfg.model.trainable_blocks!, head: cfg.model.head, seed: 1 });
    flops = countFlops(model);
    const optimizer = makeOptimizer(cfg, cfg.training.learning_rate);
    const vars = model.trainableWeights.map((w) => w.read() as tf.Variable);
    const n = o.batch;
    // Inputs in the range caffe preprocessing gives; targets ~30% positive, like Planet's.
    const x = tf.randomUniform([n, o.imageSize, o.imageSize, 3], -124, 152, 'float32', 1) as tf.Tensor4D;
    const y = tf.tidy(() => tf.cast(tf.less(tf.randomUniform([n, NTAGS], 0, 1, 'float32', 2), 0.3), 'float32')) as tf.Tensor2D;
    const parts = splitFrozen(model);
    // The trainer's own step (frozen front outside the tape); the loss is what is waited for.
    const step = (): tf.Scalar => {
      const { cost, probs } = trainStep(parts, optimizer, vars, x, y);
      probs.dispose();
      return cost;
    };
    const r: Row = {
      section: 'model',
      name: `vgg16-${o.imageSize}-block5 ${b}`,
      backend: b,
      device: info.device,
      threads: info.threads,
      batch: n,
      gflop_forward: round(flops.forward / 1e9, 2),
      gflop_train: round(flops.train / 1e9, 2),
    };

    const steps = o.trainSteps[b];
    if (steps > 0) {
      // Two warm-up steps: the second still allocates (the first step's tensors are freed only after it).
      const warmups = b === 'tensorflow' ? 2 : 1;
      log(`model: ${b}: training, ${warmups} warm-up + ${steps} timed steps of ${n}`);
      const warm = startSpan();
      for (let w = 0; w < warmups; w++) {
        const c0 = step();
        c0.dataSync();
        c0.dispose();
      }
      r.warmup_s = round(warm().ms / 1000, 2);
      const spans: Span[] = [];
      for (let s = 0; s < steps; s++) {
        const end = startSpan();
        const c = step();
        c.dataSync();
        c.dispose();
        spans.push(end());
        log(`model: ${b}: step ${s + 1}/${steps}: ${(spans.at(-1)!.ms / 1000).toFixed(1)} s`);
      }
      // Profiled apart: tf.profile's bookkeeping is not part of a step.
      profiles.push({ backend: b, profile: await profileStep(step), batch: n });
      const ms = spans.reduce((a, s) => a + s.ms, 0);
      r.train_step_s = spans.map((s) => round(s.ms / 1000, 2));
      r.train_img_s = round((n * steps * 1000) / ms, 3);
      r.train_gflop_s = round((flops.train * n * steps) / ms / 1e6, 1);
      r.train_cores = round(spans.reduce((a, s) => a + s.cpuMs, 0) / ms, 2);
    } else {
      r.train_img_s = null;
    }

    const imgs = b === 'cpu' ? Math.min(o.cpuInferImages, n) : n;
    const xi = imgs === n ? x : tf.slice(x, [0, 0, 0, 0], [imgs, -1, -1, -1]);
    const predict = (t: tf.Tensor4D): void => {
      const p = model.predict(t, { batchSize: n }) as tf.Tensor;
      p.dataSync();
      p.dispose();
    };
    const batches = o.inferBatches[b];
    log(`model: ${b}: inference, ${batches} batch${batches === 1 ? '' : 'es'} of ${imgs}`);
    // Warm-up: allocation and oneDNN primitives, at the timed size on native (a small batch elsewhere: wasm is slow).
    if (b === 'tensorflow') predict(xi);
    else if (b !== 'cpu') {
      const w = tf.slice(x, [0, 0, 0, 0], [2, -1, -1, -1]);
      predict(w);
      w.dispose();
    }
    const spans: Span[] = [];
    for (let i = 0; i < batches; i++) {
      const end = startSpan();
      predict(xi);
      spans.push(end());
    }
    const ms = spans.reduce((a, s) => a + s.ms, 0);
    r.infer_images = imgs;
    r.infer_batch_s = spans.map((s) => round(s.ms / 1000, 2));
    r.infer_img_s = round((imgs * batches * 1000) / ms, 3);
    r.infer_gflop_s = round((flops.forward * imgs * batches) / ms / 1e6, 1);
    r.infer_cores = round(spans.reduce((a, s) => a + s.cpuMs, 0) / ms, 2);
    if (steps === 0) {
      const estMin = (n * flops.train) / ((r.infer_gflop_s as number) * 1e9) / 60;
      r.note = `training not usable: ~${estMin.toFixed(0)} min per step of ${n} at its inference rate; inference on ${imgs} images`;
    }
    rows.push(r);
    if (xi !== x) xi.dispose();
    tf.dispose([x, y]);
    optimizer.dispose();
    model.dispose();
  }
  return { rows, profiles, flops };
}

/** Adds each row's share of the machine's matmul peak (in percent). */
export function addPeakShare(rows: Row[], peakGflops: number): void {
  for (const r of rows) {
    if (typeof r.train_gflop_s === 'number') r.train_peak_pct = round((100 * r.train_gflop_s) / peakGflops, 1);
    if (typeof r.infer_gflop_s === 'number') r.infer_peak_pct = round((100 * r.infer_gflop_s) / peakGflops, 1);
  }
}

export const PROFILE_COLUMNS: Column[] = [
  { key: 'backend', title: 'backend', align: 'left' },
  { key: 'name', title: 'kernel', align: 'left' },
  { key: 'calls', title: 'calls' },
  { key: 'ms', title: 'ms', digits: 0 },
  { key: 'pct', title: '% of step', digits: 1 },
];

/** The top kernels of each profiled step, the inner kernels of the top ones, and the rest. */
export function profileRows(profiles: ModelResult['profiles'], top: number): Row[] {
  const rows: Row[] = [];
  for (const { backend, profile: p, batch } of profiles) {
    const pct = (ms: number): number => round((100 * ms) / p.wallMs, 1);
    const outer = p.kernels.filter((k) => k.depth === 0);
    rows.push({ section: 'profile', backend, name: `(whole step, batch ${batch})`, calls: null, ms: round(p.wallMs, 0), pct: 100 });
    for (const k of outer.slice(0, top)) {
      rows.push({ section: 'profile', backend, name: k.kernel, calls: k.calls, ms: round(k.ms, 1), pct: pct(k.ms) });
      for (const c of p.kernels.filter((i) => i.kernel.startsWith(`${k.kernel} > `)).slice(0, 3)) {
        rows.push({ section: 'profile', backend, name: c.kernel, sub: true, calls: c.calls, ms: round(c.ms, 1), pct: pct(c.ms) });
      }
    }
    const rest = outer.slice(top);
    rows.push({
      section: 'profile',
      backend,
      name: `${rest.length} other kernels`,
      calls: rest.reduce((a, k) => a + k.calls, 0),
      ms: round(
        rest.reduce((a, k) => a + k.ms, 0),
        1,
      ),
      pct: pct(rest.reduce((a, k) => a + k.ms, 0)),
    });
    rows.push({
      section: 'profile',
      backend,
      name: 'outside kernels (JS, tape, Adam bookkeeping)',
      calls: null,
      ms: round(p.wallMs - p.kernelMs, 1),
      pct: pct(p.wallMs - p.kernelMs),
    });
  }
  return rows;
}
