/**
 * The run store at scale: `exp runs` and `exp compare` over 1,000 and 10,000 finished runs,
 * `exp plan --json` on a 10,000-point grid, and the import time of the `exp run` parent
 * (which must stay light: it never loads TensorFlow.js). Each figure is a whole process, as a
 * user runs it; medians of a few runs.
 */
import { spawnSync } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { stringify } from 'yaml';
import { normalise, runConfigOf } from '../src/config/normalise.js';
import type { ExperimentFile } from '../src/config/types.gen.js';
import { log, tempDir } from './measure.js';
import type { Column, Row } from './table.js';

const ROOT = new URL('..', import.meta.url).pathname;
const BIN = join(ROOT, 'bin', 'exp.js');

export const STORE_COLUMNS: Column[] = [
  { key: 'name', title: 'command', align: 'left' },
  { key: 'runs', title: 'runs' },
  { key: 'seconds', title: 'wall s (median)', digits: 2 },
  { key: 'per_run_ms', title: 'ms per run', digits: 3 },
  { key: 'growth', title: 'x vs 1,000', digits: 2 },
  { key: 'target', title: 'target', align: 'left' },
];

const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

function timeCommand(args: string[], reps: number, cwd: string): number {
  const times: number[] = [];
  for (let i = 0; i < reps; i++) {
    const t0 = performance.now();
    const r = spawnSync(process.execPath, [BIN, ...args], { cwd, stdio: ['ignore', 'ignore', 'pipe'], encoding: 'utf8' });
    times.push((performance.now() - t0) / 1000);
    if (r.status !== 0) throw new Error(`exp ${args.join(' ')} exited ${r.status}: ${r.stderr.slice(0, 400)}`);
  }
  return median(times);
}

/** Writes `n` finished runs of one sweep as exp would leave them (config, point, record, summary, 15 epochs). */
function writeStore(root: string, n: number): string {
  const sweep = join(root, 'bench', 'sweep-big');
  mkdirSync(sweep, { recursive: true });
  const base = runConfigOf(normalise({ name: 'bench', data: { path: '/data/planet' } } as ExperimentFile, '/x.yaml'));
  const points = [];
  for (let i = 0; i < n; i++) {
    const lr = 1e-5 * (i + 1);
    const key = (0x100000000000 + i).toString(16).slice(-12);
    const dir = `learning_rate=${lr.toPrecision(4)}-${key.slice(0, 8)}`;
    const runDir = join(sweep, dir);
    mkdirSync(runDir);
    const cfg = { ...base, training: { ...base.training, learning_rate: lr } };
    writeFileSync(join(runDir, 'config.yaml'), stringify(cfg));
    writeFileSync(
      join(runDir, 'point.json'),
      JSON.stringify({
        version: 1,
        uid: `uid-${i}`,
        key,
        name: dir,
        index: i,
        params: { 'training.learning_rate': lr },
        experiment: 'bench',
        sweep: 'sweep-big',
        sweep_uid: 'u',
        created: '2026-01-01T00:00:00Z',
      }),
    );
    writeFileSync(
      join(runDir, 'run.json'),
      JSON.stringify({
        key,
        uid: `uid-${i}`,
        name: dir,
        status: 'completed',
        created: '2026-01-01T00:00:00Z',
        started: '2026-01-01T00:00:00Z',
        ended: '2026-01-01T01:00:00Z',
        attempts: 1,
        backend: { name: 'tensorflow', device: 'cpu' },
      }),
    );
    const epochs = Array.from({ length: 15 }, (_, e) => ({
      epoch: e + 1,
      loss: 0.3 - e * 0.01,
      fbeta: 0.8 + e * 0.005,
      val_loss: 0.2 + ((i * 7 + e) % 13) / 100,
      val_fbeta: 0.85 + ((i * 3 + e) % 11) / 1000,
    }));
    writeFileSync(join(runDir, 'metrics.jsonl'), epochs.map((l) => JSON.stringify(l)).join('\n') + '\n');
    const best = epochs.reduce((a, b) => (b.val_loss < a.val_loss ? b : a));
    const { epoch, ...metrics } = best;
    writeFileSync(
      join(runDir, 'summary.json'),
      JSON.stringify({
        status: 'completed',
        reason: 'trained 15 epochs',
        key,
        name: dir,
        backend: 'tensorflow',
        device: 'cpu',
        epochs_completed: 15,
        epochs_planned: 15,
        monitor: 'val_loss',
        mode: 'min',
        best: { epoch, metrics },
        final: { val_loss: best.val_loss, val_fbeta: best.val_fbeta },
        baseline: { constant_top_k: 6, val_fbeta: 0.48 },
        duration_s: 3600,
        images_per_second: { train: 13, eval: 17 },
      }),
    );
    points.push({ index: i, key, name: dir, params: { 'training.learning_rate': lr }, dir });
  }
  writeFileSync(
    join(sweep, 'index.json'),
    JSON.stringify({ experiment: 'bench', sweep: 'sweep-big', uid: 'u', file: '/x.yaml', created: '2026-01-01T00:00:00Z', points }),
  );
  return sweep;
}

export async function benchStore(opts: { sizes: number[]; reps: number; gridSide: number }): Promise<{ rows: Row[]; notes: string[] }> {
  const rows: Row[] = [];
  const base: Record<string, number> = {};
  for (const n of opts.sizes) {
    const root = tempDir('exp-bench-store-');
    log(`store: writing ${n} finished runs`);
    const sweep = writeStore(root, n);
    for (const [name, args, target] of [
      ['exp runs --json', ['runs', root, '--json'], '< 1 s at 1,000; < 10 s at 10,000'],
      ['exp compare', ['compare', sweep], '< 1 s at 1,000; < 10 s at 10,000'],
    ] as const) {
      log(`store: ${name} over ${n} runs`);
      const s = timeCommand([...args], opts.reps, root);
      base[name] ??= s;
      rows.push({ section: 'store', name, runs: n, seconds: s, per_run_ms: (s * 1000) / n, growth: n === opts.sizes[0] ? 1 : s / base[name]!, target });
    }
  }
  const dir = tempDir('exp-bench-plan-');
  const side = Array.from({ length: opts.gridSide }, (_, i) => i + 1);
  writeFileSync(
    join(dir, 'grid.yaml'),
    `name: g\ndata: { path: ./d }\nsweep:\n  max_runs: 100000\n  grid:\n    training.epochs: [${side.join(', ')}]\n    model.head.units: [${side.join(', ')}]\n`,
  );
  log(`store: exp plan --json on a ${side.length * side.length}-point grid`);
  rows.push({
    section: 'store',
    name: 'exp plan --json',
    runs: side.length * side.length,
    seconds: timeCommand(['plan', 'grid.yaml', '--json'], opts.reps, dir),
    target: '< 1 s at 10,000',
  });
  const imports: number[] = [];
  for (let i = 0; i < opts.reps + 2; i++) {
    const r = spawnSync(
      process.execPath,
      [
        '--input-type=module',
        '-e',
        `const t = performance.now(); await import(${JSON.stringify(join(ROOT, 'dist', 'cli', 'run.js'))}); console.log(performance.now() - t);`,
      ],
      { encoding: 'utf8' },
    );
    imports.push(Number(r.stdout.trim()) / 1000);
  }
  rows.push({ section: 'store', name: 'import of the exp run parent', runs: null, seconds: median(imports), target: '< 0.5 s' });
  return {
    rows,
    notes: [
      "Whole processes (node start ~0.05 s included), median of the runs; ms per run = wall / runs. Finished runs are read from point.json, run.json and summary.json; each sweep's index.json once.",
    ],
  };
}
