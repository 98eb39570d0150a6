// Backend selection on whatever this machine has: wasm and cpu always; the native packages
// may be absent, installed without their addon, or working (then the tests of their errors skip).
import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs';
import { BACKEND_ORDER, BackendUnavailableError, probeBackends, selectBackend } from '../../src/backend/select.js';

test('auto picks a working backend and describes it', async () => {
  const info = await selectBackend('auto');
  assert.ok(BACKEND_ORDER.includes(info.name), info.name);
  assert.equal(info.tfBackend, tf.getBackend());
  assert.ok(info.threads >= 1);
  assert.ok(info.version.includes(`tfjs ${tf.version.tfjs}`), info.version);
  assert.ok(info.device.length > 0);
  if (info.name === 'wasm') {
    assert.match(info.device, /^wasm( simd)?$/);
    assert.equal(info.threads, 1);
    assert.equal(info.device === 'wasm simd', info.simd);
    assert.match(info.version, /tfjs-backend-wasm \d/);
  }
  // It really runs: a conv layer's filter gradient (missing from stock wasm) computes.
  const g = tf.tidy(() =>
    tf
      .grad((w: tf.Tensor) => tf.sum(tf.conv2d(tf.ones([1, 4, 4, 2]) as tf.Tensor4D, w as tf.Tensor4D, 1, 'same')))(tf.ones([3, 3, 2, 1]))
      .dataSync(),
  );
  assert.equal(g[8], 16); // the centre tap (1, 1) sees all 16 pixels once
  assert.equal(g[0], 9); // a corner tap sees a 3x3 corner
});

test('selecting wasm, then cpu, then wasm again works and reports each', async () => {
  assert.equal((await selectBackend('wasm')).tfBackend, 'wasm');
  const cpu = await selectBackend('cpu');
  assert.deepEqual([cpu.name, cpu.tfBackend, cpu.device, cpu.threads], ['cpu', 'cpu', 'cpu', 1]);
  assert.equal((await selectBackend('wasm')).name, 'wasm');
});

/** Selects `name`; when that works here (the package is installed and loads), skips the test. */
async function expectUnavailable(t: TestContext, name: 'tensorflow' | 'tensorflow-gpu'): Promise<BackendUnavailableError | undefined> {
  try {
    await selectBackend(name);
  } catch (e) {
    assert.ok(e instanceof BackendUnavailableError, String(e));
    return e;
  }
  t.skip(`${name} works on this machine`);
  return undefined;
}

test('tensorflow when @tensorflow/tfjs-node is absent or broken: a typed error that says how to install it', async (t) => {
  await selectBackend('wasm');
  const e = await expectUnavailable(t, 'tensorflow');
  if (e === undefined) return;
  assert.equal(e.backend, 'tensorflow');
  assert.equal(e.code, 'BACKEND_UNAVAILABLE');
  assert.match(e.reason, /@tensorflow\/tfjs-node(-gpu)? (is not installed|is installed but did not load)/);
  assert.match(e.fix!, /bash scripts\/build-native-backend\.sh/);
  assert.match(e.fix!, /npm install @tensorflow\/tfjs-node\b/);
  assert.match(e.render(), /fix: /);
  assert.equal(tf.getBackend(), 'wasm', 'a failed selection leaves the previous backend');
});

test('tensorflow-gpu when unavailable: the fix names the package, CUDA and cuDNN', async (t) => {
  const e = await expectUnavailable(t, 'tensorflow-gpu');
  if (e === undefined) return;
  assert.equal(e.backend, 'tensorflow-gpu');
  assert.match(e.fix!, /npm rebuild @tensorflow\/tfjs-node-gpu/);
  assert.match(e.fix!, /CUDA 11\.2/);
  assert.match(e.fix!, /cuDNN 8\.1/);
});

test('probeBackends lists every backend in order and ends on the best available one', async () => {
  await selectBackend('cpu');
  const rows = await probeBackends();
  assert.deepEqual(
    rows.map((r) => r.name),
    BACKEND_ORDER,
  );
  for (const r of rows) {
    if (r.available) assert.ok(r.device, `${r.name} has a device`);
    else assert.ok(r.reason && r.fix, `${r.name} says why and how to fix it`);
  }
  assert.ok(rows.find((r) => r.name === 'cpu')!.available);
  assert.ok(rows.find((r) => r.name === 'wasm')!.available);
  const best = rows.find((r) => r.available)!;
  assert.equal(tf.getBackend(), best.name.startsWith('tensorflow') ? 'tensorflow' : best.name);
});
