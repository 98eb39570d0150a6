/**
 * Parameter importances by fANOVA over a random forest, as Optuna's default evaluator
 * (optuna/importance/_fanova): a forest of regression trees fitted on the trials' params ->
 * value (bootstrap samples, every feature tried at each split, best squared-error split,
 * depth <= 64, leaves of 1), then for each tree the variance of each feature's marginal over the
 * search space (Hutter et al. 2014) divided by the tree's total variance, averaged over the
 * trees and normalised to sum to 1. Params are used raw (no log transform), as Optuna does;
 * a categorical param is one ordinal feature here (Optuna one-hot encodes it), which gives the
 * same importance for two choices. Pure and seeded: the same trials give the same numbers.
 */
import seedrandom from 'seedrandom';

/** A leaf or a split (`f` >= 0: samples with x[f] <= t go left). */
interface Node {
  f: number;
  t: number;
  l: number;
  r: number;
  v: number;
}

export type Tree = Node[];

export interface Forest {
  trees: Tree[];
  /** Per feature, [low, high] of the search space. */
  bounds: [number, number][];
}

export interface ForestOptions {
  trees?: number;
  maxDepth?: number;
  seed?: number;
}

/** The best split of the samples `idx` on any feature: the one that lowers the squared error most. */
function bestSplit(X: readonly number[][], y: readonly number[], idx: number[], order: number[]): { f: number; t: number } | undefined {
  let best: { f: number; t: number; score: number } | undefined;
  const n = idx.length;
  let total = 0;
  for (const i of idx) total += y[i]!;
  for (const f of order) {
    const sorted = [...idx].sort((a, b) => X[a]![f]! - X[b]![f]!);
    let leftSum = 0;
    for (let k = 1; k < n; k++) {
      leftSum += y[sorted[k - 1]!]!;
      const lo = X[sorted[k - 1]!]![f]!;
      const hi = X[sorted[k]!]![f]!;
      if (hi <= lo) continue;
      // Maximising sum^2/n on both sides is minimising the squared error.
      const score = (leftSum * leftSum) / k + ((total - leftSum) * (total - leftSum)) / (n - k);
      if (!best || score > best.score + 1e-12) best = { f, t: (lo + hi) / 2, score };
    }
  }
  return best && { f: best.f, t: best.t };
}

function grow(X: readonly number[][], y: readonly number[], idx: number[], depth: number, maxDepth: number, u: () => number, nodes: Node[]): number {
  const at = nodes.length;
  const mean = idx.reduce((s, i) => s + y[i]!, 0) / idx.length;
  nodes.push({ f: -1, t: 0, l: -1, r: -1, v: mean });
  const pure = idx.every((i) => Math.abs(y[i]! - mean) < 1e-12);
  if (idx.length < 2 || depth >= maxDepth || pure) return at;
  // Features in a random order, as scikit-learn visits them: ties go to the first one seen.
  const order = X[0]!.map((_, f) => f);
  for (let k = order.length - 1; k > 0; k--) {
    const j = Math.floor(u() * (k + 1));
    [order[k], order[j]] = [order[j]!, order[k]!];
  }
  const split = bestSplit(X, y, idx, order);
  if (!split) return at;
  const left = idx.filter((i) => X[i]![split.f]! <= split.t);
  const right = idx.filter((i) => X[i]![split.f]! > split.t);
  const l = grow(X, y, left, depth + 1, maxDepth, u, nodes);
  const r = grow(X, y, right, depth + 1, maxDepth, u, nodes);
  Object.assign(nodes[at]!, { f: split.f, t: split.t, l, r });
  return at;
}

/** Fits the forest (64 trees of depth <= 64 by default, as Optuna's FanovaImportanceEvaluator). */
export function fitForest(X: readonly number[][], y: readonly number[], bounds: [number, number][], opts: ForestOptions = {}): Forest {
  const u = seedrandom(`fanova:${opts.seed ?? 0}`);
  const trees: Tree[] = [];
  for (let k = 0; k < (opts.trees ?? 64); k++) {
    const sample = y.map(() => Math.floor(u() * y.length));
    const nodes: Node[] = [];
    grow(X, y, sample, 0, opts.maxDepth ?? 64, u, nodes);
    trees.push(nodes);
  }
  return { trees, bounds };
}

interface Leaf {
  v: number;
  lo: number[];
  hi: number[];
}

/** The tree's leaves with the box of the search space each one covers. */
function leavesOf(tree: Tree, bounds: [number, number][]): Leaf[] {
  const out: Leaf[] = [];
  const walk = (n: number, lo: number[], hi: number[]): void => {
    const node = tree[n]!;
    if (node.f < 0) {
      out.push({ v: node.v, lo, hi });
      return;
    }
    walk(
      node.l,
      lo,
      hi.map((h, f) => (f === node.f ? Math.min(h, node.t) : h)),
    );
    walk(
      node.r,
      lo.map((l, f) => (f === node.f ? Math.max(l, node.t) : l)),
      hi,
    );
  };
  walk(
    0,
    bounds.map((b) => b[0]),
    bounds.map((b) => b[1]),
  );
  return out;
}

const volume = (l: Leaf, skip = -1): number => l.lo.reduce((p, lo, f) => (f === skip ? p : p * Math.max(l.hi[f]! - lo, 0)), 1);

function weightedVariance(values: readonly number[], weights: readonly number[]): number {
  const w = weights.reduce((a, b) => a + b, 0);
  if (!(w > 0)) return 0;
  const mean = values.reduce((s, v, i) => s + v * weights[i]!, 0) / w;
  return values.reduce((s, v, i) => s + weights[i]! * (v - mean) ** 2, 0) / w;
}

/** The tree's prediction at x[f] = `x`, averaged over the other features (the marginal). */
function marginalOf(leaves: readonly Leaf[], f: number, x: number): number {
  let num = 0;
  let den = 0;
  for (const l of leaves) {
    if (x < l.lo[f]! || x > l.hi[f]!) continue;
    const w = volume(l, f);
    num += l.v * w;
    den += w;
  }
  return den > 0 ? num / den : NaN;
}

/** One tree's share of its variance that feature `f` explains alone. */
function treeFraction(tree: Tree, bounds: [number, number][], f: number): number | undefined {
  const leaves = leavesOf(tree, bounds);
  const total = weightedVariance(
    leaves.map((l) => l.v),
    leaves.map((l) => volume(l)),
  );
  if (!(total > 0)) return undefined;
  const cuts = [...new Set(tree.filter((n) => n.f === f).map((n) => n.t))].sort((a, b) => a - b);
  const edges = [bounds[f]![0], ...cuts, bounds[f]![1]];
  const values: number[] = [];
  const sizes: number[] = [];
  for (let k = 1; k < edges.length; k++) {
    values.push(marginalOf(leaves, f, (edges[k - 1]! + edges[k]!) / 2));
    sizes.push(edges[k]! - edges[k - 1]!);
  }
  return Math.max(weightedVariance(values, sizes), 0) / total;
}

/** Each feature's importance: the mean fraction over the trees with variance, normalised to sum to 1. */
export function importances(forest: Forest): number[] {
  const raw = forest.bounds.map((_, f) => {
    const fractions = forest.trees.map((t) => treeFraction(t, forest.bounds, f)).filter((x): x is number => x !== undefined);
    return fractions.length ? fractions.reduce((a, b) => a + b, 0) / fractions.length : 0;
  });
  const sum = raw.reduce((a, b) => a + b, 0);
  return raw.map((r) => (sum > 0 ? r / sum : 0));
}

/** The forest's marginal of feature `f` at each of `xs` (the mean over trees): the effect of that param alone. */
export function marginalCurve(forest: Forest, f: number, xs: readonly number[]): number[] {
  const all = forest.trees.map((t) => leavesOf(t, forest.bounds));
  return xs.map((x) => {
    const vals = all.map((leaves) => marginalOf(leaves, f, x)).filter(Number.isFinite);
    return vals.length ? vals.reduce((a, b) => a + b, 0) / vals.length : NaN;
  });
}
