/**
 * TPE, the Tree-structured Parzen Estimator, as Optuna's TPESampler (5.x) does it with its
 * defaults: `startup` random points (10), then the finished points split at gamma(n) =
 * min(ceil(0.1 n), 25) into the good ("below") and the rest ("above"), a Parzen estimator
 * (mixture of truncated Gaussians, one kernel per point plus a prior kernel over the whole
 * range, bandwidths from the neighbours' distances, clipped by the "magic clip") fitted to each,
 * 24 candidates drawn from the good one, and the candidate with the largest l(x)/g(x) proposed.
 * Multivariate by default (one kernel per point over all parameters at once, Optuna's default
 * for a single objective since 5.0), with Optuna's constant liar: points still running count as
 * bad, so parallel workers do not all get the same proposal. Pruned points are data too: they
 * rank below every finished point, by how far they got, then by their last value.
 *
 * Pure and deterministic: a proposal is a function of the space, the trials known when it is
 * made, the seed and its index, so a study rebuilt from its journal proposes the same again.
 */
import { drawIndex, streamOf, type Uniform } from './rng.js';
import { logGaussMass, truncnormPpf } from './normal.js';

const LOG_SQRT_2PI = 0.5 * Math.log(2 * Math.PI);
import { canonicalJson } from '../util/object.js';

export type Mode = 'min' | 'max';

/** A per-path distribution, as sweep.random and sweep.tpe take it. */
export interface Distribution {
  distribution: 'uniform' | 'log_uniform' | 'int_uniform' | 'choice';
  low?: number;
  high?: number;
  values?: readonly unknown[];
}

export type Space = Readonly<Record<string, Distribution>>;

/** A point of the study as the sampler sees it. */
export interface Trial {
  params: Readonly<Record<string, unknown>>;
  state: 'complete' | 'pruned' | 'running' | 'failed';
  /** complete: its value of the ranking metric; pruned: its last reported value. */
  value?: number;
  /** pruned: the last step (epoch) it reported. */
  step?: number;
}

export interface TpeOptions {
  seed: number;
  mode: Mode;
  /** Random points before TPE starts (Optuna's n_startup_trials). */
  startup?: number;
  /** Candidates drawn from the good estimator per proposal (Optuna's n_ei_candidates). */
  candidates?: number;
  /** One joint estimator over all parameters (Optuna 5's default), else one per parameter. */
  multivariate?: boolean;
}

export const TPE_DEFAULTS = { startup: 10, candidates: 24, multivariate: true, priorWeight: 1 } as const;

/** Optuna's default_gamma: how many finished points count as good. */
export const gamma = (n: number): number => Math.min(Math.ceil(0.1 * n), 25);

/** Optuna's default_weights: the 25 newest points weigh 1, older ones ramp down linearly. */
export function defaultWeights(n: number): number[] {
  if (n < 25) return Array.from({ length: n }, () => 1);
  const ramp = n - 25 === 1 ? [1 / n] : Array.from({ length: n - 25 }, (_, i) => 1 / n + ((1 - 1 / n) * i) / (n - 26));
  return [...ramp, ...Array.from({ length: 25 }, () => 1)];
}

/** A parameter in the estimator's space: numbers on a (log) interval, integers, or a choice's index. */
type Dim =
  { kind: 'num'; lo: number; hi: number; log: boolean; int: boolean; low: number; high: number } | { kind: 'cat'; values: readonly unknown[]; keys: string[] };

function dimOf(d: Distribution): Dim {
  if (d.distribution === 'choice') return { kind: 'cat', values: d.values!, keys: d.values!.map((v) => canonicalJson(v)) };
  const low = d.low!;
  const high = d.high!;
  if (d.distribution === 'int_uniform') return { kind: 'num', lo: low - 0.5, hi: high + 0.5, log: false, int: true, low, high };
  const log = d.distribution === 'log_uniform';
  return { kind: 'num', lo: log ? Math.log(low) : low, hi: log ? Math.log(high) : high, log, int: false, low, high };
}

/** The internal value of a param (a number, or a choice's index); undefined when it is not in the space. */
function internal(dim: Dim, v: unknown): number | undefined {
  if (dim.kind === 'cat') {
    const i = dim.keys.indexOf(canonicalJson(v));
    return i < 0 ? undefined : i;
  }
  return typeof v === 'number' && Number.isFinite(v) ? v : undefined;
}

/** Below exp's exclusive `high` of uniform and log_uniform. */
const below = (x: number, high: number): number => (x < high ? x : high - Math.max(Math.abs(high) * Number.EPSILON, Number.MIN_VALUE));

function external(dim: Dim, x: number): unknown {
  if (dim.kind === 'cat') return dim.values[x];
  return dim.int ? x : below(x, dim.high);
}

/** A random value of `d`, as sweep.random draws it. */
export function randomValue(u: Uniform, d: Distribution): unknown {
  const r = u();
  switch (d.distribution) {
    case 'choice':
      return d.values![Math.floor(r * d.values!.length)];
    case 'uniform':
      return below(d.low! + r * (d.high! - d.low!), d.high!);
    case 'log_uniform':
      return below(Math.exp(Math.log(d.low!) + r * (Math.log(d.high!) - Math.log(d.low!))), d.high!);
    case 'int_uniform':
      return Math.min(d.high!, Math.floor(d.low! + r * (d.high! - d.low! + 1)));
  }
}

/** A parameter's kernels; `logZ` is each numeric kernel's log normaliser on the range (its log mass there plus log sigma), computed once. */
type Kernels = { kind: 'num'; dim: Extract<Dim, { kind: 'num' }>; mus: number[]; sigmas: number[]; logZ: number[] } | { kind: 'cat'; probs: number[][] };

interface Estimator {
  weights: number[];
  dims: Kernels[];
}

/**
 * Bandwidths: the larger distance to a neighbour (the range's ends count as neighbours, except for the outermost
 * points), magic-clipped. Equal values keep proposal order; numpy's argsort promises none, so with ties Optuna's
 * estimator is the same mixture up to which of the tied kernels gets which bandwidth.
 */
function sigmasOf(mus: readonly number[], lo: number, hi: number): number[] {
  const order = mus.map((_, i) => i).sort((a, b) => mus[a]! - mus[b]! || a - b);
  const s = [lo, ...order.map((i) => mus[i]!), hi];
  const sorted = order.map((_, j) => Math.max(s[j + 1]! - s[j]!, s[j + 2]! - s[j + 1]!));
  if (s.length >= 4) {
    sorted[0] = s[2]! - s[1]!;
    sorted[sorted.length - 1] = s[s.length - 2]! - s[s.length - 3]!;
  }
  const minSigma = (hi - lo) / Math.min(100, 1 + (mus.length + 1));
  const out = new Array<number>(mus.length);
  order.forEach((i, j) => (out[i] = Math.min(Math.max(sorted[j]!, minSigma), hi - lo)));
  return out;
}

function kernelsOf(dim: Dim, obs: readonly number[]): Kernels {
  if (dim.kind === 'cat') {
    const n = dim.values.length;
    if (obs.length === 0) return { kind: 'cat', probs: [Array.from({ length: n }, () => 1 / n)] };
    const k = obs.length + 1;
    const probs = Array.from({ length: k }, (_, r) => Array.from({ length: n }, (_, c) => TPE_DEFAULTS.priorWeight / k + (obs[r] === c ? 1 : 0)));
    return { kind: 'cat', probs: probs.map((row) => row.map((p) => p / row.reduce((a, b) => a + b, 0))) };
  }
  const obsMus = obs.map((x) => (dim.log ? Math.log(x) : x));
  const mus = [...obsMus, 0.5 * (dim.lo + dim.hi)];
  const sigmas = [...sigmasOf(obsMus, dim.lo, dim.hi), dim.hi - dim.lo];
  const logZ = mus.map((mu, k) => logGaussMass((dim.lo - mu) / sigmas[k]!, (dim.hi - mu) / sigmas[k]!) + (dim.int ? 0 : Math.log(sigmas[k]!)));
  return { kind: 'num', dim, mus, sigmas, logZ };
}

function estimatorOf(dims: readonly Dim[], obs: readonly number[][]): Estimator {
  const w = obs.length === 0 ? [1] : [...defaultWeights(obs.length), TPE_DEFAULTS.priorWeight];
  const total = w.reduce((a, b) => a + b, 0);
  return {
    weights: w.map((x) => x / total),
    dims: dims.map((d, i) =>
      kernelsOf(
        d,
        obs.map((o) => o[i]!),
      ),
    ),
  };
}

function sampleDim(k: Kernels, kernel: number, u: Uniform): number {
  if (k.kind === 'cat') {
    const r = u();
    let acc = 0;
    const row = k.probs[kernel]!;
    let idx = 0;
    for (let c = 0; c < row.length - 1; c++) if ((acc += row[c]!) < r) idx = c + 1;
    return idx;
  }
  const { dim } = k;
  const mu = k.mus[kernel]!;
  const sigma = k.sigmas[kernel]!;
  let x = truncnormPpf(u(), (dim.lo - mu) / sigma, (dim.hi - mu) / sigma) * sigma + mu;
  if (dim.log) x = Math.exp(x);
  if (dim.int) x = Math.min(Math.max(dim.low + Math.round(x - dim.low), dim.low), dim.high);
  return x;
}

function sample(est: Estimator, u: Uniform): number[] {
  const kernel = drawIndex(u, est.weights);
  return est.dims.map((k) => sampleDim(k, kernel, u));
}

function logPdfDim(k: Kernels, kernel: number, x: number): number {
  if (k.kind === 'cat') return Math.log(k.probs[kernel]![x]!);
  const { dim } = k;
  const mu = k.mus[kernel]!;
  const sigma = k.sigmas[kernel]!;
  if (dim.int) return logGaussMass((x - 0.5 - mu) / sigma, (x + 0.5 - mu) / sigma) - k.logZ[kernel]!;
  const xt = dim.log ? Math.log(x) : x;
  if (xt < dim.lo || xt > dim.hi) return -Infinity;
  const z = (xt - mu) / sigma;
  return -(z * z) / 2 - LOG_SQRT_2PI - k.logZ[kernel]!;
}

function logPdf(est: Estimator, x: readonly number[]): number {
  const per = est.weights.map((w, kernel) => Math.log(w) + est.dims.reduce((acc, k, d) => acc + logPdfDim(k, kernel, x[d]!), 0));
  const max = Math.max(...per);
  if (max === -Infinity) return -Infinity;
  return max + Math.log(per.reduce((acc, v) => acc + Math.exp(v - max), 0));
}

/** How a pruned trial ranks among pruned ones (Optuna's _get_pruned_trial_score): further first, then better last value. */
function prunedScore(t: Trial, mode: Mode): [number, number] {
  if (t.step === undefined || t.value === undefined) return [1, 0];
  if (Number.isNaN(t.value)) return [-t.step, Infinity];
  return [-t.step, mode === 'min' ? t.value : -t.value];
}

/** Splits the known trials (by index) into the good and the bad, as Optuna's _split_trials does. */
export function split(trials: readonly Trial[], mode: Mode): { below: number[]; above: number[] } {
  const idx = trials.map((_, i) => i);
  const complete = idx.filter((i) => trials[i]!.state === 'complete' && Number.isFinite(trials[i]!.value));
  const pruned = idx.filter((i) => trials[i]!.state === 'pruned');
  const running = idx.filter((i) => trials[i]!.state === 'running');
  const n = complete.length + pruned.length;
  const sign = mode === 'min' ? 1 : -1;
  const byValue = [...complete].sort((a, b) => sign * (trials[a]!.value! - trials[b]!.value!) || a - b);
  const nBelow = Math.min(gamma(n), byValue.length);
  const byScore = [...pruned].sort((a, b) => {
    const [sa, va] = prunedScore(trials[a]!, mode);
    const [sb, vb] = prunedScore(trials[b]!, mode);
    return sa - sb || (va === vb ? 0 : va < vb ? -1 : 1) || a - b;
  });
  const nPruned = Math.min(Math.max(0, gamma(n) - nBelow), byScore.length);
  const good = [...byValue.slice(0, nBelow), ...byScore.slice(0, nPruned)].sort((a, b) => a - b);
  const bad = [...byValue.slice(nBelow), ...byScore.slice(nPruned), ...running].sort((a, b) => a - b);
  return { below: good, above: bad };
}

/** The observations of `dims` for the trials `which` that have a value for every one of them. */
function observations(trials: readonly Trial[], which: readonly number[], names: readonly string[], dims: readonly Dim[]): number[][] {
  return which.flatMap((i) => {
    const row = names.map((n, d) => internal(dims[d]!, trials[i]!.params[n]));
    return row.every((v) => v !== undefined) ? [row as number[]] : [];
  });
}

/** The good and the bad points' estimators over `names`. */
function estimators(trials: readonly Trial[], names: readonly string[], space: Space, mode: Mode): { dims: Dim[]; l: Estimator; g: Estimator } {
  const dims = names.map((n) => dimOf(space[n]!));
  const { below: good, above: bad } = split(trials, mode);
  return { dims, l: estimatorOf(dims, observations(trials, good, names, dims)), g: estimatorOf(dims, observations(trials, bad, names, dims)) };
}

/** One TPE step over `names`: candidates from l(x), the one with the largest log l(x) - log g(x). */
function tpeStep(trials: readonly Trial[], names: readonly string[], space: Space, mode: Mode, u: Uniform, candidates: number): number[] {
  const { l, g } = estimators(trials, names, space, mode);
  let best: number[] = [];
  let bestScore = -Infinity;
  for (let c = 0; c < candidates; c++) {
    const x = sample(l, u);
    const score = logPdf(l, x) - logPdf(g, x);
    if (c === 0 || score > bestScore) [best, bestScore] = [x, score];
  }
  return best;
}

/** log l(x) and log g(x), the good and the bad points' estimators' log densities at each of `xs` (what tpeStep ranks candidates by). */
export function logDensities(
  space: Space,
  history: readonly Trial[],
  mode: Mode,
  xs: readonly Record<string, unknown>[],
): { below: number[]; above: number[] } {
  const names = Object.keys(space);
  const { dims, l, g } = estimators(history, names, space, mode);
  const points = xs.map((x) => names.map((n, d) => internal(dims[d]!, x[n])!));
  return { below: points.map((x) => logPdf(l, x)), above: points.map((x) => logPdf(g, x)) };
}

/**
 * The proposal number `index` of a study over `space`, given every trial known when it is made
 * (finished, pruned, failed and still running, in proposal order).
 */
export function propose(space: Space, history: readonly Trial[], index: number, opts: TpeOptions): Record<string, unknown> {
  const u = streamOf(opts.seed, index);
  const names = Object.keys(space);
  const finished = history.filter((t) => (t.state === 'complete' && Number.isFinite(t.value)) || t.state === 'pruned').length;
  if (finished < (opts.startup ?? TPE_DEFAULTS.startup)) return Object.fromEntries(names.map((n) => [n, randomValue(u, space[n]!)]));
  const candidates = opts.candidates ?? TPE_DEFAULTS.candidates;
  const groups = (opts.multivariate ?? TPE_DEFAULTS.multivariate) ? [names] : names.map((n) => [n]);
  const out: Record<string, unknown> = {};
  for (const group of groups) {
    const x = tpeStep(history, group, space, opts.mode, u, candidates);
    group.forEach((n, d) => (out[n] = external(dimOf(space[n]!), x[d]!)));
  }
  return out;
}
