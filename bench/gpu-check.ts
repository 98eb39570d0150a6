/**
 * The GPU check's exp half (scripts/gpu-check.sh runs it): the recipe's model (VGG16 at
 * 128x128, block5 + head trainable, Adam, binary cross-entropy) at batch 128 on
 * `tensorflow-gpu`, a few hundred training steps and inference batches, then train and
 * inference img/s and the GPU's memory use. Prints a table, then one JSON line. Asserts nothing.
 *
 *   node --import tsx bench/gpu-check.ts [--steps 200] [--infer 50] [--batch 128] [--size 128]
 */
import * as tf from '@tensorflow/tfjs';
import { spawnSync } from 'node:child_process';
import { selectBackend } from '../src/backend/select.js';
import { buildModel } from '../src/model/vgg16.js';
import { makeOptimizer, trainStep } from '../src/train/loop.js';
import { splitFrozen } from '../src/model/frozen.js';
import { recipeConfig } from './config.js';

const arg = (name: string, def: number): number => {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 ? Number(process.argv[i + 1]) : def;
};
const steps = arg('steps', 200),
  inferBatches = arg('infer', 50),
  n = arg('batch', 128),
  size = arg('size', 128);

function gpuMemory(): { used_mb: number; total_mb: number; name: string }[] {
  const r = spawnSync('nvidia-smi', ['--query-gpu=name,memory.used,memory.total', '--format=csv,noheader,nounits'], { encoding: 'utf8', timeout: 10_000 });
  if (r.status !== 0) return [];
  return r.stdout
    .trim()
    .split('\n')
    .map((l) => {
      const [name, used, total] = l.split(',').map((x) => x.trim());
      return { name: name!, used_mb: Number(used), total_mb: Number(total) };
    });
}

const info = await selectBackend(process.env.EXP_GPU_CHECK_BACKEND === 'auto' ? 'auto' : 'tensorflow-gpu');
const cfg = recipeConfig('/nonexistent');
const model = buildModel({ imageSize: size, nTags: 17, trainableBlocks: cfg.model.trainable_blocks!, head: cfg.model.head, seed: 1 });
const optimizer = makeOptimizer(cfg, cfg.training.learning_rate);
const vars = model.trainableWeights.map((w) => w.read() as tf.Variable);
const x = tf.randomUniform([n, size, size, 3], -124, 152, 'float32', 1) as tf.Tensor4D;
const y = tf.tidy(() => tf.cast(tf.less(tf.randomUniform([n, 17], 0, 1, 'float32', 2), 0.3), 'float32')) as tf.Tensor2D;
const parts = splitFrozen(model);
const step = (): number => {
  const { cost, probs } = trainStep(parts, optimizer, vars, x, y);
  const v = cost.dataSync()[0]!;
  tf.dispose([cost, probs]);
  return v;
};

process.stderr.write(`gpu-check: ${info.name} on ${info.device} (${info.version})${info.note ? `: ${info.note}` : ''}\n`);
step();
step(); // warm-up: kernels, autotuning, allocations
let t0 = performance.now();
let loss = 0;
for (let s = 0; s < steps; s++) loss = step();
const trainS = (performance.now() - t0) / 1000;
const memTrain = gpuMemory();
const predict = (): void => {
  const p = model.predict(x, { batchSize: n }) as tf.Tensor;
  p.dataSync();
  p.dispose();
};
predict();
t0 = performance.now();
for (let i = 0; i < inferBatches; i++) predict();
const inferS = (performance.now() - t0) / 1000;
const result = {
  backend: info.name,
  device: info.device,
  version: info.version,
  batch: n,
  size,
  steps,
  train_img_s: (n * steps) / trainS,
  infer_img_s: (n * inferBatches) / inferS,
  last_loss: loss,
  gpu: memTrain,
  tfjs_memory_mb: tf.memory().numBytes / 2 ** 20,
};
process.stdout.write(
  [
    `exp (${info.name}, ${info.device}): VGG16 ${size}x${size} block5+head, batch ${n}`,
    `  train      ${result.train_img_s.toFixed(1)} img/s  (${steps} steps in ${trainS.toFixed(1)} s, last loss ${loss.toFixed(4)})`,
    `  inference  ${result.infer_img_s.toFixed(1)} img/s  (${inferBatches} batches in ${inferS.toFixed(1)} s)`,
    `  GPU memory ${memTrain.map((g) => `${g.name}: ${g.used_mb} / ${g.total_mb} MiB`).join('; ') || 'no nvidia-smi'}`,
    JSON.stringify(result),
  ].join('\n') + '\n',
);
