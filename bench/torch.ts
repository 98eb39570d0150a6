/**
 * Section 3: the same workload in PyTorch on the CPU (bench/torch_vgg16.py), and exp's
 * throughput as a ratio of it. PyTorch is found through findPython ($EXP_BENCH_PYTHON,
 * .venv-bench/bin/python, python3); without it the section says how to get it and is skipped.
 */
import { availableParallelism } from 'node:os';
import { join } from 'node:path';
import { findPython, log, ROOT, round, runPythonJson } from './measure.js';
import type { Column, Row } from './table.js';

export interface TorchOptions {
  batch: number;
  imageSize: number;
  trainSteps: number;
  inferBatches: number;
}

interface TorchResult {
  torch: string;
  threads: number;
  mkldnn: boolean;
  layout?: string;
  batch: number;
  size: number;
  train_img_s: number;
  infer_img_s: number;
  train_step_s: number[];
  infer_batch_s: number[];
  train_cpu_util: number;
  infer_cpu_util: number;
}

export const TORCH_COLUMNS: Column[] = [
  { key: 'name', title: 'run', align: 'left' },
  { key: 'batch', title: 'batch' },
  { key: 'train_img_s', title: 'train img/s', digits: 2 },
  { key: 'train_cores', title: 'cores', digits: 2 },
  { key: 'train_vs_torch', title: 'x torch', digits: 2 },
  { key: 'infer_img_s', title: 'infer img/s', digits: 2 },
  { key: 'infer_cores', title: 'cores', digits: 2 },
  { key: 'infer_vs_torch', title: 'x torch', digits: 2 },
  { key: 'note', title: 'note', align: 'left' },
];

export const HOW_TO_GET_TORCH =
  'no Python with torch found: `python3 -m venv .venv-bench && .venv-bench/bin/pip install torch pillow numpy h5py` ' +
  "(PyPI's torch, with its CUDA wheels: about 5.5 GB), or `apt-get install python3-torch`; or point EXP_BENCH_PYTHON at a Python that has it";

/** A peer framework on the same workload: `script` (printing torch_vgg16.py's JSON fields) in the first Python that has `module`. */
function benchPeer(
  o: TorchOptions,
  peer: { label: string; module: string; script: string; backend: string; missing: string; name: (v: TorchResult) => string; note: (v: TorchResult) => string },
): { rows: Row[]; notes: string[] } {
  const py = findPython(peer.module);
  if (py === undefined) return { rows: [], notes: [`${peer.label} skipped: ${peer.missing}.`] };
  const threads = availableParallelism();
  log(`${peer.backend}: ${py}, ${threads} threads, 2 warm-up + ${o.trainSteps} train steps, ${o.inferBatches} inference batches of ${o.batch}`);
  const args = ['--threads', threads, '--batch', o.batch, '--size', o.imageSize, '--train-steps', o.trainSteps, '--infer-batches', o.inferBatches].map(String);
  const r = runPythonJson<TorchResult>(py, [join(ROOT, 'bench', peer.script), ...args], {}, 600_000);
  if (!r.ok) return { rows: [], notes: [`${peer.label} run failed (${py}): ${r.error}`] };
  const v = r.value;
  const row: Row = {
    section: 'torch',
    name: peer.name(v),
    backend: peer.backend,
    python: py,
    batch: v.batch,
    threads: v.threads,
    train_img_s: round(v.train_img_s, 3),
    infer_img_s: round(v.infer_img_s, 3),
    train_step_s: v.train_step_s.map((s) => round(s, 2)),
    infer_batch_s: v.infer_batch_s.map((s) => round(s, 2)),
    train_cores: round(v.train_cpu_util, 2),
    infer_cores: round(v.infer_cpu_util, 2),
    note: peer.note(v),
  };
  return { rows: [row], notes: [] };
}

export const benchTorch = (o: TorchOptions): { rows: Row[]; notes: string[] } =>
  benchPeer(o, {
    label: 'PyTorch',
    module: 'torch',
    script: 'torch_vgg16.py',
    backend: 'pytorch',
    missing: HOW_TO_GET_TORCH,
    name: (v) => `pytorch ${v.torch} cpu, ${v.threads} threads`,
    note: (v) => `${v.layout ?? 'nchw'}, oneDNN ${v.mkldnn ? 'on' : 'off'}`,
  });

/**
 * Keras (TensorFlow's own Python API: the same libtensorflow as exp's native backend, through
 * compiled graphs) on the same workload, from bench/keras_vgg16.py in the Python that has it.
 */
export const benchKeras = (o: TorchOptions): { rows: Row[]; notes: string[] } =>
  benchPeer(o, {
    label: 'Keras',
    module: 'tensorflow',
    script: 'keras_vgg16.py',
    backend: 'keras',
    missing: 'no Python with tensorflow (npm run test:ci puts TensorFlow 2.20 CPU in .venv)',
    name: (v) => `${v.torch} cpu, ${v.threads} threads`,
    note: () => 'NHWC, compiled graph (train_on_batch)',
  });

/** exp's model rows beside PyTorch's, with exp / PyTorch for train and inference (same batch only). */
export function comparisonRows(modelRows: readonly Row[], torch: Row): Row[] {
  const ratio = (a: unknown, b: unknown): number | null => (typeof a === 'number' && typeof b === 'number' && b > 0 ? round(a / b, 3) : null);
  return modelRows
    .filter((m) => m.batch === torch.batch)
    .map((m) => ({
      section: 'torch',
      name: `exp, ${m.backend}`,
      backend: m.backend as string,
      batch: m.batch as number,
      train_img_s: m.train_img_s as number | null,
      train_cores: m.train_cores as number | null,
      train_vs_torch: ratio(m.train_img_s, torch.train_img_s),
      infer_img_s: m.infer_img_s as number | null,
      infer_cores: m.infer_cores as number | null,
      infer_vs_torch: ratio(m.infer_img_s, torch.infer_img_s),
    }));
}
