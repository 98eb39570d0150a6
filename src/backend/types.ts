/** The names and records of backends, free of TensorFlow.js so that light modules can use them. */

/** The backends exp can train on, fastest first. */
export type BackendName = 'tensorflow-gpu' | 'tensorflow' | 'wasm' | 'cpu';

/** The order `auto` tries. */
export const BACKEND_ORDER: readonly BackendName[] = ['tensorflow-gpu', 'tensorflow', 'wasm', 'cpu'];

/** What a run records about the backend it trained on. */
export interface BackendInfo {
  name: BackendName;
  /** tf.getBackend(): 'tensorflow' for both native packages. */
  tfBackend: string;
  /** 'cpu', the GPU's name, 'wasm simd' or 'wasm'. */
  device: string;
  /** Compute threads the backend uses (wasm in Node is single-threaded). */
  threads: number;
  /** tfjs version, plus the backend package's and libtensorflow's where there is one. */
  version: string;
  /** wasm only: whether the SIMD build was loaded (roughly 3x faster than the plain one). */
  simd?: boolean;
  /** Native CPU only: conv + bias + activation run as one oneDNN kernel (src/backend/native-kernels.ts). */
  fusedConv?: boolean;
  /** Something the user should know, e.g. the GPU build found no GPU and runs on the CPU. */
  note?: string;
}

/** How to get each backend where it is missing. */
export const BACKEND_FIX: Record<BackendName, string> = {
  'tensorflow-gpu':
    'on Linux with an NVIDIA GPU, CUDA 11.2 and cuDNN 8.1 (on LD_LIBRARY_PATH) and internet: `npm install-scripts approve @tensorflow/tfjs-node-gpu && npm rebuild @tensorflow/tfjs-node-gpu` (downloads libtensorflow-gpu 2.9.1)',
  tensorflow: 'offline: `bash scripts/build-native-backend.sh`; online: `npm install @tensorflow/tfjs-node` (downloads libtensorflow 2.9.1)',
  wasm: 'reinstall dependencies (`npm ci`); the .wasm files must be in node_modules/@tensorflow/tfjs-backend-wasm/dist',
  cpu: 'reinstall dependencies (`npm ci`)',
};
