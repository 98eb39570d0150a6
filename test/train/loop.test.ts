// The loop's failure path: a non-finite loss stops the run as failed and writes no checkpoint.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs';
import { selectBackend } from '../../src/backend/select.js';
import { buildModel } from '../../src/model/vgg16.js';
import { initialState, makeOptimizer, trainLoop } from '../../src/train/loop.js';
import type { Dataset } from '../../src/data/planet.js';
import type { RunConfig } from '../../src/config/normalise.js';
import { planExperiment } from '../../src/sweep/plan.js';

await selectBackend('wasm');

const cfg = (): RunConfig => {
  const r = planExperiment('/v/e.yaml', {
    readText: () => 'name: t\ndata: {path: /x, image_size: 32}\nmodel: {weights: none}\ntraining: {batch_size: 4, epochs: 2}\n',
  });
  return r.plan!.points[0]!.config;
};
const dataset = (n: number): Dataset => ({
  names: Array.from({ length: n }, (_, i) => `i${i}`),
  tags: ['a', 'b'],
  targets: Uint8Array.from({ length: n * 2 }, (_, i) => i % 2),
  pixels: Buffer.alloc(n * 32 * 32 * 3, 100),
  size: 32,
  fingerprint: 'f',
  report: { csv: '', rows: n, included: n, skipped: [], unlisted: [], warnings: [], cache: { path: '', hit: true, decodeSeconds: 0, imagesPerSecond: null } },
});

test('a non-finite loss fails the run with a reason and no epoch is recorded', async () => {
  const c = cfg();
  const model = buildModel({ imageSize: 32, nTags: 2, trainableBlocks: [5], head: c.model.head, seed: 1 });
  const out = model.getLayer('head_out');
  out.setWeights([out.getWeights()[0]!, tf.fill([2], NaN)]);
  const state = initialState(c);
  let epochs = 0;
  const stop = await trainLoop(model, makeOptimizer(c, 0.001), dataset(8), { train: [0, 1, 2, 3, 4, 5], val: [6, 7] }, c, state, {
    onEpoch: async () => {
      epochs++;
    },
  });
  assert.equal(stop.status, 'failed');
  assert.match(stop.reason, /non-finite training loss .* at epoch 1, batch 1.*learning_rate.*No checkpoint/);
  assert.equal(epochs, 0, 'onEpoch (which writes checkpoints) never ran');
  assert.equal(state.epoch, 0);
});
