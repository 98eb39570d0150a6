// Child process of the overhead bench: what `exp train` does before and around training, in a
// fresh Node process and from the compiled dist/ (as bin/exp.js runs it), each step timed.
// Plain JavaScript, so no TypeScript loader is timed along with exp's own modules.
//
// Usage: node bench/overhead-child.mjs WEIGHTS.h5 WORKDIR EPOCHS   -> one JSON line on stdout
import { mkdirSync, readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';

const [h5, work, epochsArg] = process.argv.slice(2);
const epochs = Number(epochsArg ?? 15);
const dist = (p) => new URL(`../dist/${p}`, import.meta.url).href;
const out = {};
const time = async (key, f) => {
  const t0 = performance.now();
  const v = await f();
  out[key] = performance.now() - t0;
  return v;
};

// The module `exp train` runs; importing it loads tfjs and the rest of the training code.
await time('import_ms', () => import(dist('train/run.js')));
const { selectBackend } = await import(dist('backend/select.js'));
const { buildModel } = await import(dist('model/vgg16.js'));
const { loadKerasWeights } = await import(dist('model/keras-h5.js'));
const { makeOptimizer } = await import(dist('train/loop.js'));
const { bceSum } = await import(dist('core/loss.js'));
const { saveCheckpoint } = await import(dist('core/checkpoint.js'));
const { EventLog } = await import(dist('track/events.js'));
const { normalise, runConfigOf } = await import(dist('config/normalise.js'));
const tf = await import('@tensorflow/tfjs');
// The recipe's settings, from the schema's defaults (as bench/config.ts does).
const cfg = runConfigOf(normalise({ name: 'bench', data: { path: work }, model: { weights: 'none' } }, join(work, 'bench.yaml')));

const info = await time('backend_ms', () => selectBackend('auto'));
out.backend = info.name;
const model = await time('build_ms', () => buildModel({ imageSize: cfg.data.image_size, nTags: 17, trainableBlocks: cfg.model.trainable_blocks, head: cfg.model.head, seed: 1 }));
const report = await time('h5_ms', () => loadKerasWeights(model, h5));
out.h5_layers = report.loaded.length;

// One step on a single image, untimed, so Adam holds its moments as in a real checkpoint.
const optimizer = makeOptimizer(cfg, cfg.training.learning_rate);
const vars = model.trainableWeights.map((w) => w.read());
const x = tf.randomUniform([1, cfg.data.image_size, cfg.data.image_size, 3], -124, 152);
const y = tf.zeros([1, 17]);
tf.dispose(optimizer.minimize(() => bceSum(model.apply(x, { training: true }), y), true, vars));
const state = { epoch: 1, history: [], best: { epoch: 1, value: 0.2 }, lr: cfg.training.learning_rate, sinceBest: 0, sinceLrChange: 0 };
const ckpt = join(work, 'checkpoints', 'last');
mkdirSync(join(work, 'checkpoints'), { recursive: true });
await time('ckpt_ms', () => saveCheckpoint(ckpt, model, optimizer, state));
out.ckpt_bytes = readdirSync(ckpt).reduce((a, f) => a + statSync(join(ckpt, f)).size, 0);

// A run's tracking log: start, one event per epoch with the loop's ~60 metrics, end.
const metrics = Object.fromEntries(Array.from({ length: 62 }, (_, i) => [`val_metric_${i}`, Math.random()]));
await time('track_ms', () => {
  const log = new EventLog(work);
  log.append({ type: 'run_started', key: 'k', name: 'bench', experiment: 'bench', sweep: 's', params: { 'training.learning_rate': 1e-3 }, tags: {}, resumed: false });
  for (let e = 1; e <= epochs; e++) log.append({ type: 'epoch', epoch: e, metrics });
  log.append({ type: 'run_ended', status: 'completed', reason: 'bench' });
});
out.events = epochs + 2;
process.stdout.write(JSON.stringify(out) + '\n');
