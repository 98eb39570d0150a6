/**
 * The GPU build (`bash scripts/build-native-backend.sh --gpu`: @tensorflow/tfjs-node-gpu on
 * TensorFlow's CUDA-enabled wheel) on a machine without a GPU: it loads and trains on the
 * CPU, and says so (`exp backends`, train.log, run.json device cpu); training.require_gpu
 * turns that into a NO_GPU failure. Skipped when the GPU build is not there, unless
 * EXP_TEST_GPU_BUILD=1 (npm run test:gpu, and CI, build it first).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { exp, tempDir } from '../helpers/cli.js';
import { tinyExperiment } from '../helpers/training.js';
import { backendMissing } from '../../src/backend/available.js';

const missing = backendMissing('tensorflow-gpu');
const required = process.env.EXP_TEST_GPU_BUILD === '1' && process.env.EXP_SKIP_NATIVE !== '1';

test('the GPU build trains on the CPU when no GPU is visible, says so, and require_gpu refuses it', { timeout: 600_000 }, (t) => {
  if (missing && !required) {
    t.skip(`no GPU build here (${missing}); npm run test:gpu builds it`);
    return;
  }
  assert.equal(missing, undefined, `the GPU build is missing: ${missing}`);
  const backends = exp(['backends', '--json']);
  assert.equal(backends.code, 0, backends.stderr);
  const gpuRow = (JSON.parse(backends.stdout) as { name: string; available: boolean; note?: string; devices?: { type: string }[]; version?: string }[]).find(
    (r) => r.name === 'tensorflow-gpu',
  )!;
  assert.equal(gpuRow.available, true);
  const visible = gpuRow.devices?.some((d) => d.type === 'gpu') ?? false;
  if (!visible) assert.equal(gpuRow.note, 'built, no GPU visible (running on CPU)');
  // On the CPU, TensorFlow 2.20's fused oneDNN convolution works too (its op wants a TArgs type list, unlike 2.13's).
  if (!visible) assert.equal((gpuRow as { fusedConv?: boolean }).fusedConv, true);
  assert.match(gpuRow.version ?? '', /tfjs-node-gpu/);

  const tmp = tempDir('exp-gpu-build-');
  const file = tinyExperiment(tmp, { backend: 'tensorflow-gpu', epochs: 1 });
  const run = exp(['run', file, '--runs-dir', join(tmp, 'runs')], { cwd: tmp });
  assert.equal(run.code, 0, run.stdout + run.stderr);
  const sweep = join(tmp, 'runs', 'tiny', readdirSync(join(tmp, 'runs', 'tiny'))[0]!);
  const dir = join(
    sweep,
    readdirSync(sweep).find((d) => d.startsWith('tiny'))!,
  );
  const rec = JSON.parse(readFileSync(join(dir, 'run.json'), 'utf8')) as { status: string; backend: { name: string; device: string } };
  assert.equal(rec.status, 'completed');
  assert.equal(rec.backend.name, 'tensorflow-gpu');
  if (!visible) {
    assert.equal(rec.backend.device, 'cpu');
    assert.match(readFileSync(join(dir, 'train.log'), 'utf8'), /no GPU visible \(running on CPU\)/);
    const strict = exp(['run', file, '--runs-dir', join(tmp, 'runs2'), '--set', 'training.require_gpu=true'], { cwd: tmp });
    assert.equal(strict.code, 1, strict.stdout + strict.stderr);
    assert.match(strict.stdout + strict.stderr, /NO_GPU/);
  }
});
