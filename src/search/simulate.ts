/**
 * Replays a finished sweep's learning curves through a scheduler on a simulated clock: N
 * workers take the points in sweep order, each epoch of a point ends after the seconds it
 * took when it was recorded, the scheduler judges the point after each epoch as it would have
 * live, and a pruned point frees its worker. Event-driven and deterministic (ties in time go to
 * the lower point index), so the same folders give the same figures every time, in milliseconds.
 */
import { Asha, Hyperband, describePrune, type Decision, type Mode, type PruneReason } from './asha.js';
import { medianVerdict } from './median.js';

export type SchedulerName = 'none' | 'median' | 'asha' | 'hyperband';

/** One recorded point: its metric and its seconds per epoch (index 0 = epoch 1). */
export interface RecordedRun {
  run: string;
  values: readonly number[];
  seconds: readonly number[];
}

export interface SimulateOptions {
  scheduler: SchedulerName;
  workers: number;
  mode: Mode;
  metric: string;
  /** ASHA/Hyperband: the first rung's epoch; median: its grace epochs. */
  minEpochs: number;
  eta: number;
  /** Hyperband's study name (picks brackets) and bracket count (default from the epochs). */
  study: string;
  brackets?: number;
  /** Median stopping: peers that must have reached the epoch. */
  minPoints: number;
}

export interface SimulatedDecision {
  run: string;
  epoch: number;
  reason: string;
  numbers?: PruneReason;
}

export interface SimulationResult {
  scheduler: SchedulerName;
  workers: number;
  epochs: number;
  grid_epochs: number;
  wall_s: number;
  grid_wall_s: number;
  best: { run: string; value: number } | null;
  true_best: { run: string; value: number } | null;
  pruned: SimulatedDecision[];
}

type Judge = (index: number, epoch: number, value: number) => { prune: false } | { prune: true; reason: string; numbers?: PruneReason };

function judgeOf(runs: readonly RecordedRun[], o: SimulateOptions): Judge {
  const fromAsha = (d: Decision): ReturnType<Judge> => (d.prune ? { prune: true, reason: describePrune(d.reason, o.metric), numbers: d.reason } : d);
  if (o.scheduler === 'asha') {
    const asha = new Asha({ minResource: o.minEpochs, eta: o.eta, mode: o.mode });
    return (i, epoch, v) => fromAsha(asha.report(String(i), epoch, v));
  }
  if (o.scheduler === 'hyperband') {
    const maxResource = Math.max(o.minEpochs, ...runs.map((r) => r.values.length));
    const hb = new Hyperband({
      minResource: o.minEpochs,
      maxResource,
      eta: o.eta,
      mode: o.mode,
      study: o.study,
      ...(o.brackets ? { brackets: o.brackets } : {}),
    });
    return (i, epoch, v) => fromAsha(hb.report(i, epoch, v));
  }
  if (o.scheduler === 'median') {
    const seen: number[][] = runs.map(() => []);
    return (i, epoch, v) => {
      seen[i]!.push(v);
      const others = seen.filter((_, j) => j !== i);
      const verdict = medianVerdict(seen[i]!, others, epoch, { grace_epochs: o.minEpochs, min_points: o.minPoints }, o.mode);
      if (!verdict.prune) return { prune: false };
      return {
        prune: true,
        reason: `pruned by median stopping at epoch ${epoch}: best ${o.metric} ${verdict.value!.toPrecision(4)} is worse than the median ${verdict.median!.toPrecision(4)} of ${verdict.peers} other points`,
      };
    };
  }
  return () => ({ prune: false });
}

const better = (a: number, b: number, mode: Mode): boolean => (mode === 'max' ? a > b : a < b);

/** The best finite value of a curve up to `epochs`. */
function bestOf(values: readonly number[], epochs: number, mode: Mode): number | undefined {
  let best: number | undefined;
  for (const v of values.slice(0, epochs)) if (Number.isFinite(v) && (best === undefined || better(v, best, mode))) best = v;
  return best;
}

function bestRun(runs: readonly RecordedRun[], epochsOf: (i: number) => number, mode: Mode): { run: string; value: number } | null {
  let out: { run: string; value: number } | null = null;
  runs.forEach((r, i) => {
    const v = bestOf(r.values, epochsOf(i), mode);
    if (v !== undefined && (out === null || better(v, out.value, mode))) out = { run: r.run, value: v };
  });
  return out;
}

/** The event loop: returns each point's epochs trained, the decisions, and when the last worker finished. */
function replay(runs: readonly RecordedRun[], workers: number, judge: Judge): { trained: number[]; pruned: SimulatedDecision[]; wall: number } {
  const trained = runs.map(() => 0);
  const pruned: SimulatedDecision[] = [];
  // One pending epoch end per busy worker: [time, point]; the next point to start.
  const pending: [number, number][] = [];
  let next = 0;
  let wall = 0;
  const start = (now: number): void => {
    while (next < runs.length && runs[next]!.values.length === 0) next++;
    if (next < runs.length) pending.push([now + (runs[next]!.seconds[0] ?? 0), next++]);
  };
  for (let w = 0; w < workers; w++) start(0);
  while (pending.length > 0) {
    pending.sort((a, b) => a[0] - b[0] || a[1] - b[1]);
    const [now, i] = pending.shift()!;
    wall = now;
    const run = runs[i]!;
    const epoch = ++trained[i]!;
    const verdict = judge(i, epoch, run.values[epoch - 1]!);
    if (verdict.prune) pruned.push({ run: run.run, epoch, reason: verdict.reason, ...(verdict.numbers ? { numbers: verdict.numbers } : {}) });
    if (!verdict.prune && epoch < run.values.length) pending.push([now + (run.seconds[epoch] ?? 0), i]);
    else start(now);
  }
  return { trained, pruned, wall };
}

/** What the scheduler would have cost and found on these recorded runs. */
export function simulate(runs: readonly RecordedRun[], o: SimulateOptions): SimulationResult {
  const { trained, pruned, wall } = replay(runs, o.workers, judgeOf(runs, o));
  const full = replay(runs, o.workers, () => ({ prune: false }));
  return {
    scheduler: o.scheduler,
    workers: o.workers,
    epochs: trained.reduce((a, b) => a + b, 0),
    grid_epochs: runs.reduce((a, r) => a + r.values.length, 0),
    wall_s: wall,
    grid_wall_s: full.wall,
    best: bestRun(runs, (i) => trained[i]!, o.mode),
    true_best: bestRun(runs, (i) => runs[i]!.values.length, o.mode),
    pruned,
  };
}
