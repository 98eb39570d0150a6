/**
 * Where a training step's time goes, by kernel, from tf.profile. Both measured backends run
 * kernels synchronously, so the per-kernel times are real kernel times.
 *
 * exp's wasm conv gradients are kernels built from other kernels, and tf.profile lists the
 * inner ones too (before their parent), so each kernel is tagged with its nesting depth when
 * recorded and inner kernels are reported under their parent ("Conv2DBackpropFilter >
 * BatchMatMul"): top-level times add up to the step's kernel time without double counting.
 */
import * as tf from '@tensorflow/tfjs';

export interface KernelTime {
  /** 'Name' at top level, 'Parent > Name' inside an exp-supplied kernel. */
  kernel: string;
  depth: number;
  calls: number;
  ms: number;
}

export interface StepProfile {
  wallMs: number;
  /** Sum of top-level kernel times; wall minus this is JS, tape and scheduling. */
  kernelMs: number;
  kernels: KernelTime[];
}

/** What tf.profile records per kernel, and the engine state we read while it records. */
interface Recorded {
  name: string;
  kernelTimeMs: number | { error: string };
}
interface EngineState {
  state: { kernelDepth: number; activeProfile: { kernels: Recorded[] } };
}

/** Runs `step` under tf.profile. `step` returns the tensor to wait for (e.g. the loss). */
export async function profileStep(step: () => tf.Tensor): Promise<StepProfile> {
  const engine = tf.engine() as unknown as EngineState;
  const depths: number[] = [];
  const t0 = performance.now();
  const info = await tf.profile(() => {
    // tf.profile has just made a fresh list; note each kernel's depth as the engine adds it
    // (it adds a kernel after the kernel returns, when kernelDepth is back to the caller's).
    const list = engine.state.activeProfile.kernels;
    const push = list.push.bind(list);
    list.push = (...ks: Recorded[]): number => {
      for (let i = 0; i < ks.length; i++) depths.push(engine.state.kernelDepth);
      return push(...ks);
    };
    const out = step();
    out.dataSync();
    return out;
  });
  const wallMs = performance.now() - t0;
  (info.result as tf.Tensor).dispose();

  // Children come before their parent: collect them per depth until the parent arrives.
  const agg = new Map<string, KernelTime>();
  const pending: string[][] = [];
  let kernelMs = 0;
  info.kernels.forEach((k, i) => {
    const depth = depths[i] ?? 0;
    const ms = typeof k.kernelTimeMs === 'number' ? k.kernelTimeMs : 0;
    const children = pending[depth + 1] ?? [];
    pending[depth + 1] = [];
    // Rename this kernel's inner kernels (recorded as 'Child' at depth + 1) to 'Parent > Child'.
    for (const key of children) {
      const c = agg.get(key)!;
      agg.delete(key);
      const name = `${k.name} > ${c.kernel}`;
      const prev = agg.get(name);
      agg.set(name, { kernel: name, depth: c.depth, calls: (prev?.calls ?? 0) + c.calls, ms: (prev?.ms ?? 0) + c.ms });
    }
    if (depth === 0) kernelMs += ms;
    // Per-call entries at depth > 0 until their parent renames them; aggregated by name at 0.
    const key = depth === 0 ? k.name : `${k.name}#${i}`;
    const prev = agg.get(key);
    agg.set(key, { kernel: k.name, depth, calls: (prev?.calls ?? 0) + 1, ms: (prev?.ms ?? 0) + ms });
    if (depth > 0) (pending[depth] ??= []).push(key);
  });
  const kernels = [...agg.values()].sort((a, b) => b.ms - a.ms);
  return { wallMs, kernelMs, kernels };
}
