import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readFileSync, writeFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { parse } from 'yaml';
import { exp, expIn, tempDir, ROOT } from '../helpers/cli.js';

test('exp --version and --help', () => {
  const v = exp(['--version']);
  assert.equal(v.code, 0);
  assert.match(v.stdout, /^exp \d+\.\d+\.\d+/);
  const h = exp(['--help']);
  assert.equal(h.code, 0);
  for (const c of ['validate', 'plan', 'run', 'schema']) assert.match(h.stdout, new RegExp(`\\b${c}\\b`));
  for (const c of ['validate', 'plan', 'run', 'schema']) {
    const ch = exp([c, '--help']);
    assert.equal(ch.code, 0, c);
    assert.match(ch.stdout, new RegExp(`Usage: exp ${c}`));
  }
  const typo = exp(['rnu']);
  assert.equal(typo.code, 2);
  assert.match(typo.stderr, /unknown command 'rnu'; did you mean 'run'\? .*\[UNKNOWN_COMMAND\]/);
});

test('exp validate: 0 for valid files, 2 with file:line:col, source line and caret for invalid ones', () => {
  const ok = exp([
    'validate',
    'experiments/vgg16-block5.yaml',
    'experiments/vgg16-sweep.yaml',
    'experiments/quickstart.yaml',
    'experiments/vgg16-block5-dihedral.yaml',
  ]);
  assert.equal(ok.code, 0, ok.stderr);
  const dir = tempDir();
  const file = join(dir, 'broken.yaml');
  writeFileSync(file, 'name: broken\ndata:\n  path: x\n  image_sise: 128\ntraining:\n  epochs: 0\n');
  const bad = exp(['validate', 'broken.yaml'], { cwd: dir });
  assert.equal(bad.code, 2);
  assert.equal(bad.stdout, '');
  assert.match(bad.stderr, /^broken\.yaml:4:3 {2}data\.image_sise {2}unknown key 'image_sise'; did you mean 'image_size'\?/m);
  assert.match(bad.stderr, /^ {3}4 \| {3}image_sise: 128\n {5}\| {3}\^$/m);
  assert.match(bad.stderr, /^broken\.yaml:6:11 {2}training\.epochs {2}expected a number >= 1, found number 0/m);
  assert.match(bad.stderr, /2 problems found/);
});

test('exp plan --json lists the exact grid', () => {
  const r = exp(['plan', 'experiments/vgg16-sweep.yaml', '--json']);
  assert.equal(r.code, 0, r.stderr);
  const points = JSON.parse(r.stdout) as {
    key: string;
    name: string;
    params: Record<string, unknown>;
    config: { model: { frozen_blocks?: number; trainable_blocks: number[] } };
  }[];
  assert.deepEqual(
    points.map((p) => p.params),
    [
      { 'model.frozen_blocks': 3, 'training.optimizer': 'adam', 'training.learning_rate': 0.001 },
      { 'model.frozen_blocks': 4, 'training.optimizer': 'adam', 'training.learning_rate': 0.001 },
      { 'model.frozen_blocks': 4, 'training.optimizer': 'sgd', 'training.learning_rate': 0.01 },
    ],
  );
  assert.equal(new Set(points.map((p) => p.key)).size, 3);
  // The resolved config keeps one canonical form: the trainable blocks.
  assert.deepEqual([points[0]!.config.model.trainable_blocks, points[0]!.config.model.frozen_blocks], [[4, 5], undefined]);
  const text = exp(['plan', 'experiments/vgg16-sweep.yaml']);
  assert.match(text.stdout, /3 runs \(1 excluded\)/);
});

test('exp schema prints the draft 2020-12 schema', () => {
  const r = exp(['schema']);
  assert.equal(r.code, 0);
  const s = JSON.parse(r.stdout) as { $schema: string };
  assert.equal(s.$schema, 'https://json-schema.org/draft/2020-12/schema');
});

test('every schema property has a description', () => {
  const schema = JSON.parse(readFileSync(join(ROOT, 'schemas/experiment.schema.json'), 'utf8')) as unknown;
  const missing: string[] = [];
  const walk = (node: unknown, path: string): void => {
    if (!node || typeof node !== 'object') return;
    const n = node as Record<string, unknown>;
    for (const [k, v] of Object.entries((n.properties ?? {}) as Record<string, Record<string, unknown>>)) {
      if (!v.description) missing.push(`${path}${k}`);
      walk(v, `${path}${k}.`);
    }
    if (n.items) walk(n.items, `${path}[].`);
    if (n.additionalProperties && typeof n.additionalProperties === 'object') walk(n.additionalProperties, `${path}*.`);
  };
  walk(schema, '');
  assert.deepEqual(missing, []);
});

test('the generated config types are up to date with the schema', async () => {
  const { spawnSync } = await import('node:child_process');
  const r = spawnSync(process.execPath, ['--import', 'tsx', join(ROOT, 'scripts/gen-types.ts'), '--check'], { encoding: 'utf8', cwd: ROOT });
  assert.equal(r.status, 0, r.stderr);
});

test('exp run writes one resolved config.yaml and point.json per point, and --set can sweep', async () => {
  const runs = tempDir();
  const r = await expIn([
    'run',
    'experiments/vgg16-block5.yaml',
    '--set',
    'training.epochs=[1,2]',
    '--set',
    'data.synth={count: 20}',
    '--set',
    'model.weights=none',
    '--runs-dir',
    runs,
    '--sweep',
    's1',
    '--dry-run',
  ]);
  assert.equal(r.code, 0, r.stderr);
  const sweep = join(runs, 'vgg16-block5', 's1');
  const index = JSON.parse(readFileSync(join(sweep, 'index.json'), 'utf8')) as { points: { dir: string; params: Record<string, unknown> }[] };
  assert.deepEqual(
    index.points.map((p) => p.params),
    [{ 'training.epochs': 1 }, { 'training.epochs': 2 }],
  );
  for (const p of index.points) {
    const cfg = parse(readFileSync(join(sweep, p.dir, 'config.yaml'), 'utf8')) as { training: { epochs: number } };
    assert.equal(cfg.training.epochs, p.params['training.epochs']);
    const point = JSON.parse(readFileSync(join(sweep, p.dir, 'point.json'), 'utf8')) as { uid: string; params: Record<string, unknown> };
    assert.deepEqual(point.params, p.params);
    assert.match(point.uid, /^[0-9a-f-]{36}$/);
  }
  assert.ok(existsSync(join(sweep, 'sweep.yaml')));
  assert.deepEqual(
    readdirSync(sweep).filter((n) => n.includes('.tmp')),
    [],
  );
});
