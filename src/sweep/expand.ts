/**
 * Stage 4: expand an experiment into its sweep points. Pure and deterministic: the same
 * document always gives the same points in the same order. Grid axes (in file order, the
 * first varying slowest) and zip groups are crossed; each of those points is then crossed
 * with `random.count` seeded draws; `exclude` drops points; duplicates (two assignments
 * that resolve to the same config) are dropped once, and counted.
 */
import seedrandom from 'seedrandom';
import type { ExperimentFile } from '../config/types.gen.js';
import { normalise, runConfigOf, type RunConfig } from '../config/normalise.js';
import { clone, deepEqual, getPath, setPath } from '../util/object.js';
import { pointName, runKey } from './key.js';

type Sweep = NonNullable<ExperimentFile['sweep']>;
type Assignment = Record<string, unknown>;

export interface SweepPoint {
  /** 0-based position in the plan. */
  index: number;
  key: string;
  name: string;
  /** Dotted path -> value, for the settings that vary. */
  params: Assignment;
  config: RunConfig;
}

export interface Expansion {
  points: SweepPoint[];
  excluded: number;
  duplicates: number;
}

/** Number of points before exclusion; computed without materialising them. */
export function pointCount(sweep: Sweep | undefined): number {
  if (!sweep) return 1;
  let n = 1;
  for (const values of Object.values(sweep.grid ?? {})) n *= values.length;
  for (const group of sweep.zip ?? []) n *= Object.values(group)[0]?.length ?? 1;
  return n * (sweep.random?.count ?? sweep.tpe?.count ?? 1);
}

function axes(sweep: Sweep): Assignment[][] {
  const out: Assignment[][] = [];
  for (const [path, values] of Object.entries(sweep.grid ?? {})) out.push(values.map((v) => ({ [path]: v })));
  for (const group of sweep.zip ?? []) {
    const entries = Object.entries(group);
    const len = entries[0]?.[1].length ?? 0;
    out.push(Array.from({ length: len }, (_, i) => Object.fromEntries(entries.map(([p, vs]) => [p, vs[i]]))));
  }
  return out;
}

function product(lists: Assignment[][]): Assignment[] {
  return lists.reduce<Assignment[]>((acc, list) => acc.flatMap((a) => list.map((b) => ({ ...a, ...b }))), [{}]);
}

function draw(rng: () => number, dist: NonNullable<Sweep['random']>['params'][string]): unknown {
  const u = rng();
  switch (dist.distribution) {
    case 'choice':
      return dist.values![Math.floor(u * dist.values!.length)];
    case 'uniform':
      return dist.low! + u * (dist.high! - dist.low!);
    case 'log_uniform':
      return Math.exp(Math.log(dist.low!) + u * (Math.log(dist.high!) - Math.log(dist.low!)));
    case 'int_uniform':
      return Math.floor(dist.low! + u * (dist.high! - dist.low! + 1));
  }
}

/** The point of `params` over the document's base (its sweep section aside): an adaptive study's proposal becomes one of these when it is made. */
export function pointOf(doc: ExperimentFile, file: string, params: Assignment, index: number): SweepPoint {
  const { sweep: _sweep, ...base } = doc;
  const written = clone(base) as Record<string, unknown>;
  for (const [path, value] of Object.entries(params)) setPath(written, path, clone(value));
  const config = runConfigOf(normalise(written as unknown as ExperimentFile, file));
  return { index, key: runKey(config), name: pointName(params, config.name), params, config };
}

/** Expands a valid document (sweep checked) into points. `file` anchors relative paths. */
export function expand(doc: ExperimentFile, file: string): Expansion {
  const { sweep, ...base } = doc;
  let assignments = sweep ? product(axes(sweep)) : [{}];
  // An adaptive study (check.ts keeps it alone in its sweep) has no point before it proposes one: its base config stands in
  // for what every proposal needs (preflight); exp plan shows the start-up draws (search/study.ts) and exp run proposes.
  if (sweep?.tpe) assignments = [{}];
  if (sweep?.random) {
    const rng = seedrandom(String(sweep.random.seed ?? 0));
    const params = Object.entries(sweep.random.params);
    assignments = assignments.flatMap((a) =>
      Array.from({ length: sweep.random!.count }, () => ({ ...a, ...Object.fromEntries(params.map(([p, d]) => [p, draw(rng, d)])) })),
    );
  }
  const points: SweepPoint[] = [];
  const seen = new Set<string>();
  let excluded = 0;
  let duplicates = 0;
  for (const params of assignments) {
    const written = clone(base) as Record<string, unknown>;
    for (const [path, value] of Object.entries(params)) setPath(written, path, clone(value));
    const config = runConfigOf(normalise(written as unknown as ExperimentFile, file));
    if ((sweep?.exclude ?? []).some((rule) => Object.entries(rule).every(([p, v]) => deepEqual(getPath(config, p), v) || deepEqual(params[p], v)))) {
      excluded++;
      continue;
    }
    const key = runKey(config);
    if (seen.has(key)) {
      duplicates++;
      continue;
    }
    seen.add(key);
    points.push({ index: points.length, key, name: pointName(params, config.name), params, config });
  }
  return { points, excluded, duplicates };
}
