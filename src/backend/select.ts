/**
 * Choosing the TensorFlow.js backend: native TensorFlow (GPU, then CPU), then wasm, then the
 * pure-JS cpu backend. A backend counts as available only when it initialises AND computes a
 * small product correctly, so a half-installed native addon is skipped, not trained on.
 *
 * The native packages are optional dependencies that may be absent (their install downloads
 * libtensorflow), so they are loaded by name with a dynamic import, never a static one.
 */
import * as tf from '@tensorflow/tfjs';
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { availableParallelism, cpus } from 'node:os';
import { dirname, join, sep } from 'node:path';
import { ensureWasmGradients } from './conv2d-grad.js';
import { gpuVisible, nativePackageBuilt } from './available.js';
import { installFusedConv } from './native-kernels.js';
import { BACKEND_FIX, BACKEND_ORDER, type BackendInfo, type BackendName } from './types.js';
import { ExpError } from '../errors.js';

export { BACKEND_ORDER, type BackendInfo, type BackendName } from './types.js';

/** One line of `exp backends`. */
export interface BackendProbe {
  name: BackendName;
  available: boolean;
  reason?: string;
  fix?: string;
  device?: string;
  version?: string;
  /** What it computes on: the CPU (with its threads), or each GPU TensorFlow uses (name, memory). */
  devices?: { type: 'cpu' | 'gpu' | 'wasm'; name: string; memory_mb?: number; threads?: number }[];
  note?: string;
  /** Native CPU: conv + bias + activation run as one oneDNN kernel (backend/native-kernels.ts). */
  fusedConv?: boolean;
}

/** The devices a backend runs on, as `exp backends --json` reports them. */
function devicesOf(info: BackendInfo): NonNullable<BackendProbe['devices']> {
  if (info.tfBackend === 'wasm') return [{ type: 'wasm', name: info.device, threads: info.threads }];
  if (info.device === 'cpu') return [{ type: 'cpu', name: cpus()[0]?.model.trim() ?? 'cpu', threads: info.threads }];
  const r = spawnSync('nvidia-smi', ['--query-gpu=name,memory.total', '--format=csv,noheader,nounits'], { encoding: 'utf8', timeout: 5000 });
  const gpus =
    r.status === 0
      ? r.stdout
          .trim()
          .split('\n')
          .filter(Boolean)
          .map((l) => {
            const [n, mem] = l.split(',').map((x) => x.trim());
            return { type: 'gpu' as const, name: n ?? 'gpu', memory_mb: Number(mem) };
          })
      : [];
  return gpus.length > 0 ? gpus : [{ type: 'gpu', name: info.device }];
}

/** A backend that was asked for by name cannot be used; `fix` says how to make it usable. */
export class BackendUnavailableError extends ExpError<'BACKEND_UNAVAILABLE'> {
  readonly backend: BackendName;
  readonly reason: string;

  constructor({ backend, reason, fix }: { backend: BackendName; reason: string; fix: string }) {
    super({ code: 'BACKEND_UNAVAILABLE', message: `backend '${backend}' is unavailable: ${reason}`, fix, exit: 'failed' });
    this.name = 'BackendUnavailableError';
    this.backend = backend;
    this.reason = reason;
  }
}

const PACKAGE = { 'tensorflow-gpu': '@tensorflow/tfjs-node-gpu', tensorflow: '@tensorflow/tfjs-node' } as const;
type NativePackage = (typeof PACKAGE)[keyof typeof PACKAGE];

type Attempt = { ok: true; info: BackendInfo } | { ok: false; reason: string; fix: string };
const fail = (name: BackendName, reason: string, fix = BACKEND_FIX[name]): Attempt => ({ ok: false, reason, fix });
const message = (e: unknown): string => (e instanceof Error ? e.message : String(e)).split('\n')[0]!.trim();
const require = createRequire(import.meta.url);

/**
 * Sets the backend, checking it works.
 *
 * @param wanted 'auto' takes the first of BACKEND_ORDER that works; a name takes that one or
 *   throws BackendUnavailableError (and leaves the previous backend in place).
 * @param opts.threads native TensorFlow only: intra-op threads (TF_NUM_INTRAOP_THREADS), which
 *   takes effect only if the native package was not loaded yet. wasm and cpu use one thread.
 */
export async function selectBackend(wanted: 'auto' | BackendName, opts: { threads?: number } = {}): Promise<BackendInfo> {
  const previous = tf.getBackend() as string | null;
  const failures: string[] = [];
  for (const name of wanted === 'auto' ? BACKEND_ORDER : [wanted]) {
    // auto: the GPU build without a visible GPU is the CPU build's equal at best; the CPU build
    // (when there is one) is taken instead, and only one libtensorflow can be loaded per process.
    if (wanted === 'auto' && name === 'tensorflow-gpu' && !gpuVisible() && native === undefined && nativePackageBuilt(PACKAGE.tensorflow)) {
      failures.push('tensorflow-gpu: no GPU visible; the CPU build is used');
      continue;
    }
    const a = await attempt(name, opts.threads);
    if (a.ok) return a.info;
    if (wanted !== 'auto') {
      await restore(previous);
      throw new BackendUnavailableError({ backend: name, reason: a.reason, fix: a.fix });
    }
    failures.push(`${name}: ${a.reason}`);
  }
  // The cpu backend ships inside @tensorflow/tfjs, so this means a broken install.
  throw new BackendUnavailableError({ backend: 'cpu', reason: `no backend works (${failures.join('; ')})`, fix: BACKEND_FIX.cpu });
}

/**
 * Tries every backend, in BACKEND_ORDER, for `exp backends`. Ends on the best one that works.
 * Loading a native package is for the life of the process (one libtensorflow per process), so
 * after tensorflow-gpu is loaded, 'tensorflow' reports on that same library running on CPU.
 */
export async function probeBackends(): Promise<BackendProbe[]> {
  const rows: BackendProbe[] = [];
  let best: BackendName | undefined;
  for (const name of BACKEND_ORDER) {
    const a = await attempt(name);
    if (a.ok) {
      best ??= name;
      rows.push({
        name,
        available: true,
        device: a.info.device,
        version: a.info.version,
        devices: devicesOf(a.info),
        ...(a.info.fusedConv !== undefined ? { fusedConv: a.info.fusedConv } : {}),
        ...(a.info.note ? { note: a.info.note } : {}),
      });
    } else {
      rows.push({ name, available: false, reason: a.reason, fix: a.fix });
    }
  }
  if (best !== undefined) await attempt(best);
  return rows;
}

async function attempt(name: BackendName, threads?: number): Promise<Attempt> {
  switch (name) {
    case 'tensorflow-gpu':
    case 'tensorflow':
      return attemptNative(name, threads);
    case 'wasm':
      return attemptWasm();
    case 'cpu':
      return attemptCpu();
  }
}

/** A 2x2 by 2x1 product: catches backends that initialise but compute garbage or throw. */
function smoke(): string | undefined {
  try {
    const v = tf.tidy(() =>
      tf
        .matMul(
          tf.tensor2d([
            [1, 2],
            [3, 4],
          ]),
          tf.tensor2d([[5], [6]]),
        )
        .dataSync(),
    );
    return v[0] === 17 && v[1] === 39 ? undefined : `smoke test computed [${Array.from(v).join(', ')}], expected [17, 39]`;
  } catch (e) {
    return `smoke test failed: ${message(e)}`;
  }
}

async function restore(previous: string | null): Promise<void> {
  if (previous !== null && tf.getBackend() !== previous && tf.findBackend(previous) !== null) await tf.setBackend(previous);
}

async function attemptCpu(): Promise<Attempt> {
  if (!(await tf.setBackend('cpu'))) return fail('cpu', 'the cpu backend did not initialise');
  // The cpu backend prints an "install our node backend" banner on first use; `exp backends`
  // already says how to get the native backend, so the banner is switched off.
  (tf.backend() as unknown as { firstUse?: boolean }).firstUse = false;
  const bad = smoke();
  if (bad !== undefined) return fail('cpu', bad);
  return { ok: true, info: { name: 'cpu', tfBackend: 'cpu', device: 'cpu', threads: 1, version: `tfjs ${tf.version.tfjs}` } };
}

let wasmPathsSet = false;

async function attemptWasm(): Promise<Attempt> {
  let mod: typeof import('@tensorflow/tfjs-backend-wasm');
  try {
    mod = await import('@tensorflow/tfjs-backend-wasm');
  } catch (e) {
    return fail('wasm', `@tensorflow/tfjs-backend-wasm did not load: ${message(e)}`);
  }
  if (!wasmPathsSet) {
    // Point the loader at the package's own dist folder, so it finds its .wasm files whatever
    // the entry script or bundling; the trailing separator is required (it is a prefix).
    const dist = dirname(require.resolve('@tensorflow/tfjs-backend-wasm'));
    if (!existsSync(join(dist, 'tfjs-backend-wasm.wasm'))) return fail('wasm', `no tfjs-backend-wasm.wasm in ${dist}`);
    mod.setWasmPaths(dist + sep);
    wasmPathsSet = true;
  }
  const ok = await withoutNewProcessHandlers(() => tf.setBackend('wasm'));
  if (!ok) return fail('wasm', 'the wasm backend did not initialise (see the warning above)');
  ensureWasmGradients();
  const bad = smoke();
  if (bad !== undefined) return fail('wasm', bad);
  const simd = (await tf.env().getAsync('WASM_HAS_SIMD_SUPPORT')) === true;
  return {
    ok: true,
    info: {
      name: 'wasm',
      tfBackend: 'wasm',
      device: simd ? 'wasm simd' : 'wasm',
      simd,
      // Node gets the single-threaded build (tfjs disables wasm threads under Node).
      threads: mod.getThreadsCount(),
      version: `tfjs ${tf.version.tfjs}, tfjs-backend-wasm ${mod.version_wasm}`,
    },
  };
}

/**
 * Runs `f`, then removes the uncaughtException/unhandledRejection listeners it added. wasm's
 * Emscripten glue adds two that rethrow, so every later crash of exp would be reported at a
 * 30 kB minified line of tfjs-backend-wasm.js instead of at its own stack; Node's defaults
 * (print the error, exit 1) are what the CLI expects.
 */
async function withoutNewProcessHandlers<T>(f: () => Promise<T>): Promise<T> {
  const exceptions = new Set(process.listeners('uncaughtException'));
  const rejections = new Set(process.listeners('unhandledRejection'));
  try {
    return await f();
  } finally {
    for (const l of process.listeners('uncaughtException')) if (!exceptions.has(l)) process.removeListener('uncaughtException', l);
    for (const l of process.listeners('unhandledRejection')) if (!rejections.has(l)) process.removeListener('unhandledRejection', l);
  }
}

/** The native package loaded into this process, if any: libtensorflow cannot be unloaded. */
let native: { pkg: NativePackage; version: string; threads: number } | undefined;

/** What the tfjs-node backend object exposes that we read (both packages share the class). */
interface NativeBackend {
  isUsingGpuDevice?: boolean;
  binding?: { TF_Version?: string };
}

async function attemptNative(name: 'tensorflow-gpu' | 'tensorflow', threads?: number): Promise<Attempt> {
  // 'tensorflow' reuses whichever binding is loaded: the GPU build runs on CPU when it finds no GPU.
  const pkg = name === 'tensorflow' && native !== undefined ? native.pkg : PACKAGE[name];
  if (native !== undefined && native.pkg !== pkg) {
    return fail(name, `${native.pkg} is already loaded in this process, and only one libtensorflow can be`, `run in a fresh process; ${BACKEND_FIX[name]}`);
  }
  if (native === undefined) {
    if (threads !== undefined) process.env.TF_NUM_INTRAOP_THREADS = String(threads);
    // libtensorflow logs a few INFO lines (oneDNN, CPU features) on load; keep warnings and errors.
    // The GPU build with no GPU to find logs a cuInit error that is not one: exp says it instead.
    process.env.TF_CPP_MIN_LOG_LEVEL ??= pkg === PACKAGE['tensorflow-gpu'] && !gpuVisible() ? '3' : '1';
    let mod: { version?: Record<string, string>; default?: { version?: Record<string, string> } };
    try {
      mod = (await import(pkg)) as typeof mod;
    } catch (e) {
      // A package whose addon is missing fails after registering its kernels; drop them, or the
      // other package's import repeats each registration with a warning (hundreds of lines).
      for (const k of tf.getKernelsForBackend('tensorflow')) tf.unregisterKernel(k.kernelName, 'tensorflow');
      const missing = (e as { code?: string }).code === 'ERR_MODULE_NOT_FOUND' && message(e).includes(`'${pkg}'`);
      return fail(name, missing ? `${pkg} is not installed` : `${pkg} is installed but did not load: ${message(e)}`);
    }
    const versions = mod.version ?? mod.default?.version ?? {};
    native = { pkg, version: versions['tfjs-node'] ?? '?', threads: Number(process.env.TF_NUM_INTRAOP_THREADS) || availableParallelism() };
  }
  if (tf.findBackendFactory('tensorflow') === null) {
    // Its @tensorflow/tfjs is a different copy from ours, so it registered with another engine.
    return fail(
      name,
      `${pkg} registered its backend with a different copy of @tensorflow/tfjs`,
      'run `npm dedupe` so that a single @tensorflow/tfjs (4.22.0) is installed',
    );
  }
  if (!(await tf.setBackend('tensorflow'))) return fail(name, `${pkg} loaded but its backend did not initialise`);
  const bad = smoke();
  if (bad !== undefined) {
    tf.removeBackend('tensorflow'); // never leave the process on a backend that computes wrong
    return fail(name, bad);
  }
  const be = tf.backend() as unknown as NativeBackend;
  const gpu = be.isUsingGpuDevice === true;
  const lib = be.binding?.TF_Version;
  const fused = installFusedConv();
  return {
    ok: true,
    info: {
      // The GPU build without a visible GPU runs on the CPU: it says so (device 'cpu', and a
      // note), and training.require_gpu turns that into an error.
      name,
      tfBackend: 'tensorflow',
      device: gpu ? gpuName() : 'cpu',
      threads: native.threads,
      version: `tfjs ${tf.version.tfjs}, ${native.pkg} ${native.version}${lib ? `, libtensorflow ${lib}` : ''}`,
      fusedConv: fused.ok,
      ...(name === 'tensorflow-gpu' && !gpu ? { note: 'built, no GPU visible (running on CPU)' } : {}),
    },
  };
}

/** The first GPU's name from nvidia-smi, when it is on PATH; the binding does not expose it. */
function gpuName(): string {
  const r = spawnSync('nvidia-smi', ['--query-gpu=name', '--format=csv,noheader'], { encoding: 'utf8', timeout: 5000 });
  const first = r.status === 0 ? r.stdout.split('\n')[0]?.trim() : undefined;
  return first || 'cuda gpu';
}
