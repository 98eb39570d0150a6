/**
 * The median stopping rule (sweep.early_stop), pure: after `grace_epochs`, a point whose best
 * metric so far at epoch e is worse than the median of the other points' bests at epoch e is
 * pruned, once at least `min_points` others have reached e. exec/prune applies it to a live
 * sweep's points; search/simulate replays it over recorded curves.
 */

/** The best value up to `epoch`; undefined for a point that has not reached it. */
const bestSoFar = (c: readonly number[], epoch: number, mode: 'min' | 'max'): number | undefined => {
  if (c.length < epoch) return undefined;
  const vals = c.slice(0, epoch).filter(Number.isFinite);
  if (vals.length === 0) return undefined;
  return mode === 'min' ? Math.min(...vals) : Math.max(...vals);
};

export function median(xs: readonly number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
}

export interface Verdict {
  prune: boolean;
  value?: number;
  median?: number;
  peers: number;
}

/** The median rule for one point at `epoch`. */
export function medianVerdict(
  self: readonly number[],
  others: readonly (readonly number[])[],
  epoch: number,
  rule: { grace_epochs: number; min_points: number },
  mode: 'min' | 'max',
): Verdict {
  const peers = others.map((c) => bestSoFar(c, epoch, mode)).filter((v): v is number => v !== undefined);
  const value = bestSoFar(self, epoch, mode);
  if (epoch <= rule.grace_epochs || peers.length < rule.min_points || value === undefined)
    return { prune: false, peers: peers.length, ...(value === undefined ? {} : { value }) };
  const med = median(peers);
  return { prune: mode === 'min' ? value > med : value < med, value, median: med, peers: peers.length };
}
