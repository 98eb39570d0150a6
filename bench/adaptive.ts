/**
 * Section "adaptive": the figures of issue 20. (1) A grid sweep trained to the end (16 points x
 * 15 epochs at 32 px, synthetic data, --workers 2), kept in .cache/bench-adaptive-full between
 * runs, replayed by `exp sweep simulate` for asha, hyperband, median and none; (2) the same grid
 * with `early_stop: {rule: asha}` trained for real; (3) TPE against random search, the same points.
 * Estimated time of the full section on 2 busy cores (from --quick: ~2.5 s per point-epoch with
 * 2 workers at 120 images): ~25 min when the grid must be recorded, ~12 min when it is reused.
 */
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { log, ROOT, round } from './measure.js';
import { run } from './recipe-runs.js';
import type { Column, Row } from './table.js';

const BIN = join(ROOT, 'bin', 'exp.js');

export const ADAPTIVE_COLUMNS: Column[] = [
  { key: 'name', title: 'scheduler / search', align: 'left' },
  { key: 'epochs', title: 'epochs' },
  { key: 'pct_grid', title: '% grid epochs', digits: 1 },
  { key: 'wall_s', title: 'wall s', digits: 1 },
  { key: 'best_run', title: 'best point', align: 'left' },
  { key: 'best', title: 'best F2', digits: 4 },
  { key: 'true_best', title: 'true best', digits: 4 },
  { key: 'gap_pct', title: 'gap %', digits: 2 },
  { key: 'note', title: 'note', align: 'left' },
];

export interface AdaptiveOptions {
  quick: boolean;
  lrs: number[];
  units: number[];
  dropouts: number[];
  epochs: number;
  /** Synthetic images, train + val. */
  count: number;
  /** Points of the TPE and random searches. */
  searchPoints: number;
  searchEpochs: number;
}

/** Kept between bench runs (.cache/ is git-ignored): the recorded grid and the synthetic images every part shares. */
const keptDir = (o: AdaptiveOptions): string => join(ROOT, '.cache', `bench-adaptive-${o.quick ? 'quick' : 'full'}`);

const points = (o: AdaptiveOptions): number => o.lrs.length * o.units.length * o.dropouts.length;

/** An experiment file at 32 px on the synthetic data of `dir`, with `sweep` lines appended. */
function experiment(dir: string, name: string, o: AdaptiveOptions, epochs: number, sweep: string[]): string {
  mkdirSync(dir, { recursive: true });
  const file = join(dir, `${name}.yaml`);
  writeFileSync(
    file,
    [
      `name: ${name}`,
      `data: { path: ${join(keptDir(o), 'data')}, image_size: 32, resize: bilinear, synth: { count: ${o.count}, seed: 0, size: 64 } }`,
      'model: { weights: none, frozen_blocks: 4, head: { units: 32 } }',
      'augmentation: { rotation_range: 15, dihedral: true }',
      `training: { batch_size: 16, epochs: ${epochs}, learning_rate: 0.001, seed: 1 }`,
      'evaluation: { tune_thresholds: false }',
      'backend: auto',
      'sweep:',
      ...sweep.map((l) => `  ${l}`),
    ].join('\n') + '\n',
  );
  return file;
}

const gridLine = (o: AdaptiveOptions): string =>
  `grid: { training.learning_rate: [${o.lrs.join(', ')}], model.head.units: [${o.units.join(', ')}], model.head.dropout: [${o.dropouts.join(', ')}] }`;

interface Point {
  dir: string;
  status: string;
  epochs: number;
  f2: number | undefined;
}

/** The sweep's points as its run folders record them (status, epochs in metrics.jsonl, best epoch's val F2). */
function readPoints(runs: string): Point[] {
  const index = JSON.parse(run(process.execPath, [BIN, 'runs', '--json'], { EXP_RUNS_DIR: runs })) as { dir: string }[];
  return index.map((r) => {
    const status = (JSON.parse(readFileSync(join(r.dir, 'run.json'), 'utf8')) as { status: string }).status;
    const metrics = join(r.dir, 'metrics.jsonl');
    const lines = existsSync(metrics) ? readFileSync(metrics, 'utf8').split('\n').filter(Boolean) : [];
    // A point's value is its best epoch's val F2, as `exp sweep simulate` ranks it, so every row compares alike.
    const values = lines.map((l) => (JSON.parse(l) as { val_fbeta?: number }).val_fbeta).filter((v): v is number => typeof v === 'number');
    return { dir: r.dir, status, epochs: lines.length, f2: values.length ? Math.max(...values) : undefined };
  });
}

/** `exp run FILE --workers 2`; its wall time in seconds. */
function expRun(file: string, runs: string): number {
  const t0 = performance.now();
  run(process.execPath, [BIN, 'run', file, '--workers', '2'], { EXP_RUNS_DIR: runs, MLFLOW_TRACKING_URI: '' });
  return (performance.now() - t0) / 1000;
}

/** The grid sweep trained to the end, recorded once in a kept folder; reused when every point completed all its epochs. */
function recordedGrid(o: AdaptiveOptions): { sweep: string; points: Point[]; note: string; wall?: number } {
  const dir = keptDir(o);
  const runs = join(dir, 'runs');
  const file = experiment(dir, 'adaptivegrid', o, o.epochs, [gridLine(o)]);
  const complete = (ps: Point[]): boolean => ps.length === points(o) && ps.every((p) => p.status === 'completed' && p.epochs === o.epochs);
  const wallFile = join(dir, 'grid-wall-s.txt');
  let ps = existsSync(runs) ? readPoints(runs) : [];
  const resumed = ps.length > 0;
  let note: string;
  if (complete(ps)) {
    note = `reused the recorded grid in ${dir}`;
  } else {
    log(`adaptive: recording the grid (${points(o)} points x ${o.epochs} epochs, --workers 2) in ${dir}${ps.length ? ' (resuming)' : ''}`);
    const s = expRun(file, runs);
    ps = readPoints(runs);
    note = `recorded the grid now in ${dir} (${round(s, 0)} s)`;
    // Its real wall time, for the real ASHA row, only when recorded in one go.
    if (!resumed) writeFileSync(wallFile, `${round(s, 1)}\n`);
  }
  log(`adaptive: ${note}`);
  if (!complete(ps)) throw new Error(`the grid in ${runs} is not complete: ${ps.map((p) => `${p.status}/${p.epochs}`).join(' ')}`);
  const wall = existsSync(wallFile) ? Number(readFileSync(wallFile, 'utf8').trim()) : NaN;
  return { sweep: join(ps[0]!.dir, '..'), points: ps, note, ...(Number.isFinite(wall) ? { wall } : {}) };
}

interface Simulation {
  epochs: number;
  grid_epochs: number;
  wall_s: number;
  grid_wall_s: number;
  best: { run: string; value: number };
  true_best: { run: string; value: number };
  pruned: unknown[];
}

const base = (p: string): string => p.split('/').filter(Boolean).at(-1) ?? p;
const gap = (best: number, truth: number): number => round((100 * (truth - best)) / truth, 2);

function simulationRows(sweep: string): { rows: Row[]; asha?: Simulation } {
  const rows: Row[] = [];
  let asha: Simulation | undefined;
  for (const scheduler of ['asha', 'hyperband', 'median', 'none']) {
    try {
      const out = run(process.execPath, [BIN, 'sweep', 'simulate', sweep, '--scheduler', scheduler, '--workers', '2', '--json']);
      const s = JSON.parse(out) as Simulation;
      if (scheduler === 'asha') asha = s;
      rows.push({
        section: 'adaptive',
        name: `simulated: ${scheduler}`,
        epochs: s.epochs,
        pct_grid: round((100 * s.epochs) / s.grid_epochs, 1),
        wall_s: round(s.wall_s, 1),
        best_run: base(s.best.run),
        best: round(s.best.value, 4),
        true_best: round(s.true_best.value, 4),
        gap_pct: gap(s.best.value, s.true_best.value),
        note: `${s.pruned.length} pruned; grid ${s.grid_epochs} epochs, ${round(s.grid_wall_s, 1)} s`,
      });
    } catch (e) {
      rows.push({ section: 'adaptive', name: `simulated: ${scheduler}`, note: `failed: ${(e as Error).message.split('\n')[0]}` });
    }
  }
  return asha ? { rows, asha } : { rows };
}

const bestOf = (ps: Point[]): Point | undefined => ps.filter((p) => p.f2 !== undefined).sort((a, b) => (b.f2 ?? 0) - (a.f2 ?? 0))[0];

/** The grid with ASHA, trained for real in a fresh runs folder (a timing: never reused). */
function realAsha(o: AdaptiveOptions, dir: string, grid: Point[], gridWall: { s: number; how: string }): Row {
  const file = experiment(dir, 'adaptiveasha', o, o.epochs, [gridLine(o), 'early_stop: { rule: asha }']);
  log(`adaptive: the grid with asha, for real (--workers 2)`);
  const seconds = expRun(file, join(dir, 'runs-asha'));
  const ps = readPoints(join(dir, 'runs-asha'));
  const epochs = ps.reduce((a, p) => a + p.epochs, 0);
  const gridEpochs = grid.reduce((a, p) => a + p.epochs, 0);
  const best = bestOf(ps);
  const truth = bestOf(grid);
  return {
    section: 'adaptive',
    name: 'real: asha, --workers 2',
    epochs,
    pct_grid: round((100 * epochs) / gridEpochs, 1),
    wall_s: round(seconds, 1),
    best_run: best ? base(best.dir) : '-',
    best: best?.f2 === undefined ? null : round(best.f2, 4),
    true_best: truth?.f2 === undefined ? null : round(truth.f2, 4),
    gap_pct: best?.f2 !== undefined && truth?.f2 !== undefined ? gap(best.f2, truth.f2) : null,
    note: `${ps.filter((p) => p.status === 'pruned').length} pruned; grid: ${gridEpochs} epochs, ${round(gridWall.s, 1)} s (${gridWall.how})`,
  };
}

/** TPE and random search over the same space, the same number of points and seed. */
function searches(o: AdaptiveOptions, dir: string): Row[] {
  const space = [
    '  params:',
    '    training.learning_rate: { distribution: log_uniform, low: 0.0001, high: 0.01 }',
    '    model.head.units: { distribution: int_uniform, low: 8, high: 128 }',
    '    model.head.dropout: { distribution: uniform, low: 0, high: 0.6 }',
  ];
  const kinds: [string, string[]][] = [
    ['random', [`random:`, `  count: ${o.searchPoints}`, '  seed: 0', ...space]],
    ['tpe', [`tpe:`, `  count: ${o.searchPoints}`, '  seed: 0', `  startup: ${Math.max(2, Math.floor(o.searchPoints / 3))}`, ...space]],
  ];
  const rows: Row[] = [];
  for (const [kind, lines] of kinds) {
    try {
      log(`adaptive: ${kind} search, ${o.searchPoints} points x ${o.searchEpochs} epochs`);
      const file = experiment(dir, `adaptive${kind}`, o, o.searchEpochs, lines);
      const seconds = expRun(file, join(dir, `runs-${kind}`));
      const ps = readPoints(join(dir, `runs-${kind}`));
      const best = bestOf(ps);
      rows.push({
        section: 'adaptive',
        name: `search: ${kind}, ${ps.length} points`,
        epochs: ps.reduce((a, p) => a + p.epochs, 0),
        wall_s: round(seconds, 1),
        best_run: best ? base(best.dir) : '-',
        best: best?.f2 === undefined ? null : round(best.f2, 4),
      });
    } catch (e) {
      rows.push({ section: 'adaptive', name: `search: ${kind}`, note: `failed: ${(e as Error).message.split('\n')[0]}` });
    }
  }
  return rows;
}

/** The section: each part catches its own failure, so one broken part still leaves the others' figures. */
export function benchAdaptive(o: AdaptiveOptions, tmp: string): { rows: Row[]; notes: string[] } {
  const notes = [
    `grid: learning rate [${o.lrs.join(', ')}] x head units [${o.units.join(', ')}] x dropout [${o.dropouts.join(', ')}] = ${points(o)} points x ${o.epochs} epochs, 32 px, ${o.count} synthetic images; simulated and real runs with 2 workers.`,
    "F2: a point's best epoch val_fbeta (as the simulator ranks it); gap % = (true best - best found) / true best; search rows: the same log-uniform lr, int units, uniform dropout space, seed 0, the same points each.",
  ];
  const rows: Row[] = [];
  try {
    const grid = recordedGrid(o);
    notes.push(grid.note);
    const sim = simulationRows(grid.sweep);
    rows.push(...sim.rows);
    if (sim.asha) {
      const pct = (100 * sim.asha.epochs) / sim.asha.grid_epochs;
      const g = gap(sim.asha.best.value, sim.asha.true_best.value);
      const met = pct <= 25 && g <= 1;
      notes.push(
        `issue 20's goal (ASHA within 1% of the grid's best F2 on at most 25% of its epochs): ${met ? 'met' : 'NOT met'} (${round(pct, 1)}% of the epochs, gap ${g}%).`,
      );
    }
    const simWall = rows.find((r) => r.name === 'simulated: none')?.wall_s;
    const gridWall =
      grid.wall !== undefined ? { s: grid.wall, how: 'its real recording' } : { s: typeof simWall === 'number' ? simWall : NaN, how: 'simulated' };
    rows.push(realAsha(o, join(tmp, 'asha'), grid.points, gridWall));
  } catch (e) {
    notes.push(`grid / asha failed: ${(e as Error).message.split('\n').slice(0, 3).join(' ')}`);
  }
  rows.push(...searches(o, join(tmp, 'search')));
  return { rows, notes };
}
