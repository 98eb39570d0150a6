#!/usr/bin/env node
// Run by `npm ci` / `npm install` in this repository (the `prepare` script, after the build):
// sets up the fastest backend this machine can have, so the first `exp run` trains on native
// TensorFlow instead of wasm. Never fails the install: when nothing works it prints one line
// saying why and that wasm will be used.
//
//   EXP_NATIVE=0     skip (training uses wasm until `bash scripts/build-native-backend.sh`)
//   EXP_NATIVE=gpu   the GPU build (bash scripts/build-native-backend.sh --gpu)
//   (default)        native CPU: tfjs-node's own download where it works, else the build from the
//                    tensorflow-cpu wheel on PyPI (cached in ~/.cache/exp/native; ~1-3 min the first
//                    time, seconds after)
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('..', import.meta.url));
const mode = (process.env.EXP_NATIVE ?? '1').toLowerCase();
const cache = process.env.EXP_NATIVE_CACHE || join(process.env.XDG_CACHE_HOME || join(homedir(), '.cache'), 'exp', 'native');
const say = (s) => process.stderr.write(`exp: ${s}\n`);
const FALLBACK = 'training will use the wasm backend (about 5x slower); set it up later with: bash scripts/build-native-backend.sh';

if (mode === '0' || mode === 'false' || mode === 'no') {
  say(`native TensorFlow not set up (EXP_NATIVE=${mode}); ${FALLBACK}`);
  process.exit(0);
}
const gpu = mode === 'gpu';
const pkg = gpu ? '@tensorflow/tfjs-node-gpu' : '@tensorflow/tfjs-node';
const gpuVisible = spawnSync('nvidia-smi', ['-L'], { encoding: 'utf8', timeout: 10_000 }).status === 0;

/** Loads the binding in a child and runs one op; returns its one-line report, or undefined. */
function works() {
  const r = spawnSync(
    process.execPath,
    [
      '-e',
      `
    const tf = require(${JSON.stringify(pkg)});
    const v = tf.matMul(tf.tensor2d([[1, 2], [3, 4]]), tf.tensor2d([[5], [6]])).dataSync();
    if (v[0] !== 17 || v[1] !== 39) process.exit(1);
    if (process.env.EXP_REQUIRE_GPU === '1' && !tf.backend().isUsingGpuDevice) process.exit(1);
    console.log(tf.backend().binding.TF_Version);`,
    ],
    { cwd: root, encoding: 'utf8', timeout: 120_000, env: { ...process.env, TF_CPP_MIN_LOG_LEVEL: '2', EXP_REQUIRE_GPU: gpu && gpuVisible ? '1' : '0' } },
  );
  return r.status === 0 ? r.stdout.trim().split('\n').at(-1) : undefined;
}

const already = works();
if (already) {
  say(`native TensorFlow backend ready (${pkg}, libtensorflow ${already})`);
  process.exit(0);
}

try {
  mkdirSync(cache, { recursive: true });
} catch (e) {
  say(`native TensorFlow not set up (cannot create ${cache}: ${e.message}; set EXP_NATIVE_CACHE to a writable folder); ${FALLBACK}`);
  process.exit(0);
}
const log = join(cache, 'setup.log');
const t0 = Date.now();

// 1. tfjs-node's own install script (downloads libtensorflow from Google's storage bucket).
const own = join(root, 'node_modules', pkg, 'scripts', 'install.js');
if (!gpu && existsSync(own)) {
  const r = spawnSync(process.execPath, [own], { cwd: join(root, 'node_modules', pkg), encoding: 'utf8', timeout: 180_000 });
  const v = r.status === 0 ? works() : undefined;
  if (v) {
    say(`native TensorFlow backend ready (${pkg}'s own download, libtensorflow ${v}, ${((Date.now() - t0) / 1000).toFixed(0)} s)`);
    process.exit(0);
  }
}

// 2. The build from the PyPI wheel.
say(
  `setting up native TensorFlow from the ${gpu ? 'tensorflow GPU' : 'tensorflow-cpu'} wheel on PyPI (first time: a download and a compile, 1-3 min; EXP_NATIVE=0 skips; log: ${log})`,
);
const r = spawnSync('bash', [join(root, 'scripts', 'build-native-backend.sh'), ...(gpu ? ['--gpu'] : [])], {
  cwd: root,
  encoding: 'utf8',
  timeout: 1_800_000,
  env: { ...process.env, EXP_NATIVE_CACHE: cache },
  maxBuffer: 64 * 2 ** 20,
});
const out = `${r.stdout ?? ''}${r.stderr ?? ''}`;
try {
  writeFileSync(log, out);
} catch {
  /* the log is a convenience */
}
const v = r.status === 0 ? works() : undefined;
if (v) {
  say(`native TensorFlow backend ready (${pkg}, libtensorflow ${v}, built in ${((Date.now() - t0) / 1000).toFixed(0)} s)`);
  process.exit(0);
}
const why = r.error
  ? r.error.message
  : (
      out
        .split('\n')
        .reverse()
        .find((l) => /ERROR|error|failed/.test(l)) ?? `exit ${r.status}`
    ).replace(/^\[native-backend\] /, '');
say(`native TensorFlow not set up (${why.trim()}); ${FALLBACK}`);
process.exit(0);
