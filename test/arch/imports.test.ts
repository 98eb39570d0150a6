/**
 * The architecture as the import graph shows it: the folders of src/ in layers, every arrow
 * pointing down (checked at folder level, so train/ and infer/ cannot lean on each other even
 * without a file cycle); no cycles among src/ modules; and the light side (cli/, exec/, store/,
 * query/, track/, mlflow/, ...) never reaches train/, infer/, core/, model/ or the backend
 * selector, which load TensorFlow.js. The light side is checked twice: statically, over the
 * source's runtime imports, and at runtime, by loading command modules and listing every
 * module Node resolved.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { spawnSync } from 'node:child_process';
import { dirname, join, relative, resolve } from 'node:path';
import { ROOT } from '../helpers/cli.js';

const SRC = join(ROOT, 'src');

function sources(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((d) =>
    d.isDirectory() ? sources(join(dir, d.name)) : d.name.endsWith('.ts') ? [join(dir, d.name)] : [],
  );
}

/** Static runtime imports of each module (type-only imports and dynamic imports left out). */
function graph(): Map<string, string[]> {
  const g = new Map<string, string[]>();
  for (const file of sources(SRC)) {
    const text = readFileSync(file, 'utf8');
    const deps: string[] = [];
    const re = /^(?:import|export)\s+(type\s+)?(?:[^'"]*?\sfrom\s+)?['"]([^'"]+)['"]/gm;
    for (const m of text.matchAll(re)) {
      if (m[1]) continue; // `import type` has no runtime edge
      const spec = m[2]!;
      if (spec.startsWith('.')) deps.push(relative(SRC, resolve(dirname(file), spec.replace(/\.js$/, '.ts'))));
      else deps.push(spec);
    }
    g.set(relative(SRC, file), deps);
  }
  return g;
}

/** Modules that load TensorFlow.js or HDF5 (model/weights.ts and model/errors.ts are light: lookup, MD5, errors). */
const HEAVY =
  /^train\/|^infer\/|^core\/|^model\/(?!weights\.ts$|errors\.ts$)|^backend\/(select|conv2d-grad|im2col|native-kernels|native-op)\.ts$|^@tensorflow\/|^h5wasm/;
const LIGHT = /^(cli|exec|store|query|report|track|mlflow|reproduce|config|sweep|search)\//;

/**
 * The folders of src/ from the bottom up, as the code has them. A module imports (at runtime,
 * for types, or on demand) only from its own folder or from a folder of a lower layer; folders
 * of one layer are independent of each other. Why each sits where it does:
 */
const LAYERS: readonly (readonly string[])[] = [
  ['errors.ts'], // the coded errors every layer throws
  ['util'], // bounded, atomic file IO; dotted paths and canonical JSON
  ['config', 'backend', 'mlflow'], // the file format; the TensorFlow.js backends; the MLflow REST client
  ['sweep', 'search', 'data', 'model'], // expansion and run keys (config); pure search algorithms; the dataset (the backends' native ops); VGG16 (config's types)
  ['store'], // the run store: folder names come from sweep/key
  ['query', 'core'], // rows and rankings over the store; the shared core of training and inference (model build, checkpoints, batches, metrics, loss, the prediction loop, thresholds, the run's split)
  ['report'], // exp report's page, from the store through query/
  ['track'], // the event log and the MLflow sink (mlflow, query, store; the sweep parent renders report/)
  ['exec', 'reproduce'], // launchers and queue workers (track, store, search); reproduce (track, mlflow, query)
  ['train', 'infer'], // the child `exp train` (it speaks exec/protocol), and using a trained model: both on core/
  ['cli'], // the commands, which load train/ and infer/ on demand
];

/**
 * Arrows allowed upward (folder -> module), each on demand only (a dynamic import) and with its
 * reason. The MLflow sink builds a run's MLflow model (Keras HDF5 + MLmodel) with infer/ only
 * when the run logs one.
 */
const UPWARD_ON_DEMAND = new Set(['track -> infer/mlflow-model.ts']);

const folderOf = (module: string): string => (module.includes('/') ? module.split('/')[0]! : module);

/** Every import between src/ modules, static (runtime or type-only) and dynamic, with its kind. */
function allImports(): { from: string; to: string; dynamic: boolean }[] {
  const out: { from: string; to: string; dynamic: boolean }[] = [];
  for (const file of sources(SRC)) {
    const text = readFileSync(file, 'utf8');
    const from = relative(SRC, file);
    const add = (spec: string, dynamic: boolean): void => {
      if (spec.startsWith('.')) out.push({ from, to: relative(SRC, resolve(dirname(file), spec.replace(/\.js$/, '.ts'))), dynamic });
    };
    for (const m of text.matchAll(/^(?:import|export)\s+(?:type\s+)?(?:[^'"]*?\sfrom\s+)?['"]([^'"]+)['"]/gm)) add(m[1]!, false);
    for (const m of text.matchAll(/\bimport\(\s*['"]([^'"]+)['"]\s*\)/g)) add(m[1]!, true);
  }
  return out;
}

test('every folder of src/ has its layer, and imports point down the layers only (folder level: train/ and infer/ never import each other)', () => {
  const layer = new Map(LAYERS.flatMap((folders, i) => folders.map((f) => [f, i] as const)));
  const unplaced = [...new Set(sources(SRC).map((f) => folderOf(relative(SRC, f))))].filter((f) => !layer.has(f));
  assert.deepEqual(unplaced, [], 'a new folder of src/ needs its place in LAYERS');
  const bad: string[] = [];
  for (const { from, to, dynamic } of allImports()) {
    const [a, b] = [folderOf(from), folderOf(to)];
    if (a === b || layer.get(b)! < layer.get(a)!) continue;
    if (dynamic && UPWARD_ON_DEMAND.has(`${a} -> ${to}`)) continue;
    bad.push(`${from} -> ${to}${dynamic ? ' (on demand)' : ''}: ${a} is ${layer.get(b) === layer.get(a) ? 'beside' : 'below'} ${b}`);
  }
  assert.deepEqual(bad, []);
});

test('src/ has no import cycle', () => {
  const g = graph();
  const state = new Map<string, 'open' | 'done'>();
  const cycles: string[] = [];
  const visit = (n: string, path: string[]): void => {
    if (state.get(n) === 'done') return;
    if (state.get(n) === 'open') {
      cycles.push([...path.slice(path.indexOf(n)), n].join(' -> '));
      return;
    }
    state.set(n, 'open');
    for (const d of g.get(n) ?? []) if (g.has(d)) visit(d, [...path, n]);
    state.set(n, 'done');
  };
  for (const n of g.keys()) visit(n, []);
  assert.deepEqual(cycles, []);
});

test('the light side (cli, exec, store, query, report, track, mlflow, reproduce, config, sweep, search) never imports train/, infer/, core/, model/, the backend selector or TensorFlow.js', () => {
  const g = graph();
  const bad: string[] = [];
  for (const [n, deps] of g) if (LIGHT.test(n)) for (const d of deps) if (HEAVY.test(d)) bad.push(`${n} -> ${d}`);
  assert.deepEqual(bad, []);
});

test('loading the exp run, exp worker, exp runs and exp status commands loads no @tensorflow package (checked at runtime)', () => {
  for (const cmd of ['run', 'runs', 'status', 'compare', 'sync', 'validate']) {
    const probe = spawnSync(process.execPath, [join(ROOT, 'test', 'arch', 'load-probe.mjs'), join(ROOT, 'dist', 'cli', `${cmd}.js`)], {
      encoding: 'utf8',
      cwd: ROOT,
    });
    assert.equal(probe.status, 0, probe.stderr);
    const loaded = JSON.parse(probe.stdout) as string[];
    assert.ok(loaded.length > 10, `${cmd}: the probe saw its imports (${loaded.length})`);
    assert.deepEqual(
      loaded.filter((u) => u.includes('@tensorflow') || u.includes('h5wasm') || /\/dist\/(train\/|infer\/|core\/|model\/(?!weights\.js|errors\.js))/.test(u)),
      [],
      `exp ${cmd}`,
    );
  }
});
