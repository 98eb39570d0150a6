/**
 * The architecture as the import graph shows it: no cycles among src/ modules, and the light
 * side (cli/, exec/, store/, query/, track/, mlflow/) never reaches train/, model/ or the
 * backend selector, which load TensorFlow.js. Checked twice: statically, over the source's
 * runtime imports, and at runtime, by loading the `exp run` and `exp runs` command modules
 * and listing every module Node resolved.
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
const HEAVY = /^train\/|^model\/(?!weights\.ts$|errors\.ts$)|^backend\/(select|conv2d-grad|im2col|native-kernels|native-op)\.ts$|^@tensorflow\/|^h5wasm/;
const LIGHT = /^(cli|exec|store|query|report|track|mlflow|reproduce|config|sweep|search)\//;

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

test('the light side (cli, exec, store, query, report, track, mlflow, reproduce, config, sweep, search) never imports train/, model/, the backend selector or TensorFlow.js', () => {
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
      loaded.filter((u) => u.includes('@tensorflow') || u.includes('h5wasm') || /\/dist\/(train\/|model\/(?!weights\.js|errors\.js))/.test(u)),
      [],
      `exp ${cmd}`,
    );
  }
});
