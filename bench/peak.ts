/**
 * The machine's matmul peak, measured in the same run: numpy's float32 sgemm (OpenBLAS, on all
 * cores and on one) through Python, and tf.matMul on each tfjs backend, 2048x2048x2048
 * (17.2 GFLOP), the best of a few after a warm-up. The model rows are set against the best.
 */
import * as tf from '@tensorflow/tfjs';
import { availableParallelism } from 'node:os';
import { selectBackend } from '../src/backend/select.js';
import type { BenchBackend } from './machine.js';
import { findPython, log, round, runPythonJson, startSpan } from './measure.js';
import type { Row } from './table.js';

const N = 2048;
const FLOP = 2 * N ** 3;

const NUMPY = `
import json, time, numpy as np
try:
    cfg = np.show_config(mode="dicts")["Build Dependencies"]["blas"]
    blas = f"{cfg.get('name', '?')} {cfg.get('version', '')}".strip()
except Exception:
    blas = "?"
a = np.random.rand(${N}, ${N}).astype(np.float32); b = np.random.rand(${N}, ${N}).astype(np.float32)
a @ b
times = []
for _ in range(REPS):
    t = time.perf_counter()
    a @ b
    times.append(time.perf_counter() - t)
print(json.dumps({"numpy": np.__version__, "blas": blas, "s": min(times)}))
`;

export async function benchPeak(backends: readonly BenchBackend[], reps: number): Promise<Row[]> {
  const rows: Row[] = [];
  const threads = availableParallelism();
  const py = findPython('numpy');
  if (py === undefined) {
    rows.push({ section: 'peak', name: 'numpy sgemm', backend: 'numpy', gflop_s: null, note: 'no Python with numpy (set EXP_BENCH_PYTHON)' });
  } else {
    // All cores, then one: how far a second core scales, and a per-core figure for wasm's one thread.
    for (const t of threads > 1 ? [threads, 1] : [1]) {
      log(`peak: numpy sgemm ${N}, ${t} thread${t === 1 ? '' : 's'} (${py})`);
      const env = { OPENBLAS_NUM_THREADS: String(t), OMP_NUM_THREADS: String(t), MKL_NUM_THREADS: String(t) };
      const r = runPythonJson<{ numpy: string; blas: string; s: number }>(py, ['-c', NUMPY.replace('REPS', String(reps))], env);
      rows.push(
        r.ok
          ? {
              section: 'peak',
              name: `numpy sgemm ${N}`,
              backend: `numpy ${r.value.numpy}, ${r.value.blas}`,
              threads: t,
              gflop_s: round(FLOP / r.value.s / 1e9, 1),
            }
          : { section: 'peak', name: `numpy sgemm ${N}`, backend: 'numpy', threads: t, gflop_s: null, note: r.error },
      );
    }
  }
  for (const b of backends) {
    if (b === 'cpu') continue; // the pure-JS matmul is not a peak of anything
    const info = await selectBackend(b);
    log(`peak: tf.matMul ${N} on ${b}`);
    const [x, y] = [tf.randomUniform([N, N]), tf.randomUniform([N, N])];
    const once = (): number => {
      const end = startSpan();
      const z = tf.matMul(x, y);
      z.dataSync();
      z.dispose();
      return end().ms;
    };
    once();
    const ms = Math.min(...Array.from({ length: reps }, once));
    tf.dispose([x, y]);
    rows.push({ section: 'peak', name: `tf.matMul ${N}`, backend: b, threads: info.threads, gflop_s: round(FLOP / ms / 1e6, 1) });
  }
  return rows;
}

/** The machine peak: the best native figure (wasm's matmul is not a peak of the machine). */
export function machinePeak(rows: readonly Row[]): { gflop_s: number; from: string } | undefined {
  const all = rows.filter((r) => typeof r.gflop_s === 'number' && r.backend !== 'wasm');
  if (all.length === 0) return undefined;
  const best = all.reduce((a, b) => ((b.gflop_s as number) > (a.gflop_s as number) ? b : a));
  return { gflop_s: best.gflop_s as number, from: `${best.name} (${best.backend})` };
}

/** Row by row, the faster of two measurements of the same peaks (noted as such). */
export function bestPeaks(a: readonly Row[], b: readonly Row[]): Row[] {
  return a.map((r, i) => {
    const o = b[i];
    const x = typeof r.gflop_s === 'number' ? r.gflop_s : -1,
      y = typeof o?.gflop_s === 'number' ? o.gflop_s : -1;
    const best = y > x ? o! : r;
    return x > 0 && y > 0 ? { ...best, note: `best of before (${x}) and after (${y}) the model rows` } : best;
  });
}
