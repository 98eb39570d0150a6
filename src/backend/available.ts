/**
 * Whether a backend can be used here, told from the installed files alone: no TensorFlow.js
 * is loaded, so a light launcher (`exp run` before it writes anything, `exp validate
 * --preflight`) can check a config's backend. The trainer still checks for real (a smoke
 * test on the backend) when it starts.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, readdirSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import type { BackendName } from './types.js';

const require = createRequire(import.meta.url);

const packageDir = (name: string): string | undefined => {
  try {
    return dirname(require.resolve(`${name}/package.json`));
  } catch {
    return undefined;
  }
};

/** A native package is usable when its addon was built and libtensorflow sits beside it. */
function nativeBuilt(pkg: string): string | undefined {
  const dir = packageDir(pkg);
  if (!dir) return `${pkg} is not installed`;
  const lib = join(dir, 'lib');
  const addon = existsSync(lib) && readdirSync(lib).some((d) => d.startsWith('napi-v') && existsSync(join(lib, d, 'tfjs_binding.node')));
  if (!addon) return `${pkg} is installed but its native addon was not built`;
  const deps = join(dir, 'deps', 'lib');
  if (!existsSync(deps) || !readdirSync(deps).some((f) => f.startsWith('libtensorflow'))) return `${pkg} has no libtensorflow in deps/lib`;
  return undefined;
}

/** Why `name` cannot be used here, or undefined when it looks usable. 'auto' always finds one. */
export function backendMissing(name: BackendName | 'auto'): string | undefined {
  switch (name) {
    case 'auto':
    case 'cpu':
      return undefined;
    case 'wasm': {
      const dir = packageDir('@tensorflow/tfjs-backend-wasm');
      return dir && existsSync(join(dir, 'dist', 'tfjs-backend-wasm.wasm')) ? undefined : '@tensorflow/tfjs-backend-wasm or its .wasm files are missing';
    }
    case 'tensorflow':
      return nativeBuilt('@tensorflow/tfjs-node') === undefined
        ? undefined
        : nativeBuilt('@tensorflow/tfjs-node-gpu') === undefined
          ? undefined
          : nativeBuilt('@tensorflow/tfjs-node');
    case 'tensorflow-gpu':
      return nativeBuilt('@tensorflow/tfjs-node-gpu');
  }
}

let visible: boolean | undefined;

/** Whether the NVIDIA driver shows a GPU (nvidia-smi -L lists one); CUDA_VISIBLE_DEVICES='' or -1 hides them all. */
export function gpuVisible(env: NodeJS.ProcessEnv = process.env): boolean {
  const cvd = env.CUDA_VISIBLE_DEVICES;
  if (cvd !== undefined && (cvd.trim() === '' || cvd.trim() === '-1')) return false;
  visible ??= (() => {
    const r = spawnSync('nvidia-smi', ['-L'], { encoding: 'utf8', timeout: 10_000 });
    return r.status === 0 && /^GPU \d+/m.test(r.stdout);
  })();
  return visible;
}

/** Whether this native package's addon is built (and its libtensorflow beside it). */
export const nativePackageBuilt = (pkg: '@tensorflow/tfjs-node' | '@tensorflow/tfjs-node-gpu'): boolean => nativeBuilt(pkg) === undefined;
