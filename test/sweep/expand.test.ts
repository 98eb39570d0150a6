import { test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { planExperiment } from '../../src/sweep/plan.js';
import { runKey } from '../../src/sweep/key.js';
import { defaultSweepId } from '../../src/store/sweep.js';
import type { RunConfig } from '../../src/config/normalise.js';
import { exp } from '../helpers/cli.js';

const fx = (name: string): string => new URL(`../config/fixtures/valid/${name}`, import.meta.url).pathname;
const plan = (file: string, set: string[] = []) => {
  const r = planExperiment(file, { set });
  assert.deepEqual(r.problems, []);
  return r.plan!;
};
/** Plans an in-memory file (no disk), so a test can state its YAML inline. */
const planText = (text: string, set: string[] = []) => {
  const r = planExperiment('/virtual/exp.yaml', { set, readText: (p) => (p === '/virtual/exp.yaml' ? text : undefined) });
  return r;
};

test('grid gives the Cartesian product, first axis slowest, in file order', () => {
  const p = plan(fx('grid.yaml'));
  assert.deepEqual(
    p.points.map((x) => [x.params['training.learning_rate'], x.params['training.optimizer']]),
    [
      [0.001, 'adam'],
      [0.001, 'sgd'],
      [0.01, 'adam'],
      [0.01, 'sgd'],
      [0.1, 'adam'],
      [0.1, 'sgd'],
    ],
  );
  assert.equal(p.points[3]!.config.training.learning_rate, 0.01);
  assert.equal(p.points[3]!.config.training.optimizer, 'sgd');
  assert.equal(p.points[0]!.name, 'learning_rate=0.001,optimizer=adam');
});

test('zip links lists and crosses the group with grid axes', () => {
  const p = plan(fx('zip.yaml'));
  assert.deepEqual(
    p.points.map((x) => x.params),
    [
      { 'model.frozen_blocks': 3, 'training.optimizer': 'adam', 'training.learning_rate': 0.001 },
      { 'model.frozen_blocks': 3, 'training.optimizer': 'sgd', 'training.learning_rate': 0.01 },
      { 'model.frozen_blocks': 4, 'training.optimizer': 'adam', 'training.learning_rate': 0.001 },
      { 'model.frozen_blocks': 4, 'training.optimizer': 'sgd', 'training.learning_rate': 0.01 },
    ],
  );
});

test('random draws are seeded, within their distributions, and reproducible', () => {
  const a = plan(fx('random.yaml'));
  const b = plan(fx('random.yaml'));
  assert.equal(a.points.length, 5);
  assert.deepEqual(
    a.points.map((p) => p.key),
    b.points.map((p) => p.key),
  );
  for (const p of a.points) {
    const lr = p.params['training.learning_rate'] as number;
    assert.ok(lr >= 1e-5 && lr < 1e-2, `lr ${lr}`);
    assert.ok([64, 128, 256].includes(p.params['model.head.units'] as number));
    const bs = p.params['training.batch_size'] as number;
    assert.ok(Number.isInteger(bs) && bs >= 16 && bs <= 64);
    const d = p.params['model.head.dropout'] as number;
    assert.ok(d >= 0 && d < 0.5);
  }
  const other = planText(
    `name: r\ndata: {path: x}\nsweep:\n  random:\n    count: 5\n    seed: 8\n    params:\n      training.learning_rate: {distribution: log_uniform, low: 0.00001, high: 0.01}\n`,
  );
  assert.notDeepEqual(
    other.plan!.points.map((p) => p.params['training.learning_rate']),
    a.points.map((p) => p.params['training.learning_rate']),
  );
});

test('exclude removes matching points and counts them', () => {
  const p = plan(fx('exclude.yaml'));
  assert.deepEqual(
    p.points.map((x) => x.params),
    [
      { 'model.frozen_blocks': 4, 'training.optimizer': 'adam' },
      { 'model.frozen_blocks': 4, 'training.optimizer': 'sgd' },
      { 'model.frozen_blocks': 5, 'training.optimizer': 'adam' },
    ],
  );
  assert.equal(p.excluded, 3);
});

test('run keys ignore key order, number spelling, names and tracking; change with any setting', () => {
  const a = planText('name: a\ndata: {path: /d}\ntraining: {learning_rate: 0.001, epochs: 3}\n').plan!.points[0]!;
  const b = planText('training: {epochs: 3, learning_rate: 1e-3}\ndata: {path: /d}\nname: b\ndescription: other\ntracking: {uri: "http://x"}\n').plan!
    .points[0]!;
  const c = planText('name: a\ndata: {path: /d}\ntraining: {learning_rate: 0.002, epochs: 3}\n').plan!.points[0]!;
  assert.equal(a.key, b.key);
  assert.notEqual(a.key, c.key);
  assert.match(a.key, /^[0-9a-f]{12}$/);
  // Equivalent spellings of the trainable blocks resolve to one config and one key.
  const f = planText('name: a\ndata: {path: /d}\nmodel: {frozen_blocks: 3}\n').plan!.points[0]!;
  const t = planText('name: a\ndata: {path: /d}\nmodel: {trainable_blocks: [5, 4]}\n').plan!.points[0]!;
  assert.equal(f.key, t.key);
  // Keys are a function of the config alone.
  assert.equal(runKey(structuredClone(a.config) as RunConfig), a.key);
  // Settings that do not change what is trained do not change the key (so a newer exp that adds one keeps old keys).
  const same = planText(
    'name: b\ndata: {path: /d}\nevaluation: {tta: true, tune_thresholds: false}\ntraining: {require_gpu: true}\ncheckpoint: {every_minutes: 1}\ntracking: {uri: http://x}\n',
  ).plan!.points[0]!;
  assert.equal(same.key, planText('name: a\ndata: {path: /d}\n').plan!.points[0]!.key);
  // The feature cache: on or off, its bound, and float32 storage train the same run; float16 does not.
  const base = planText('name: a\ndata: {path: /d}\n').plan!.points[0]!.key;
  assert.equal(planText('name: a\ndata: {path: /d}\nfeature_cache: {enabled: false, max_gb: 1, dtype: float32}\n').plan!.points[0]!.key, base);
  assert.notEqual(planText('name: a\ndata: {path: /d}\nfeature_cache: {dtype: float16}\n').plan!.points[0]!.key, base);
});

test('run keys stay what earlier versions of exp made, so an upgrade does not retrain a finished sweep', () => {
  // The key of this file before the feature cache (and its resolved defaults) existed.
  assert.equal(planText('name: a\ndata: {path: /d}\n').plan!.points[0]!.key, '1d3d8c3e8ba7');
  // And the sweep id, so exp run of the same file finds its sweep folder again.
  const sweep = planText('name: a\ndata: {path: /d}\nsweep: {grid: {training.learning_rate: [0.001, 0.01]}}\n').plan!;
  assert.deepEqual(
    sweep.points.map((p) => p.key),
    ['1d3d8c3e8ba7', 'b7c3fbe3971b'],
  );
  assert.equal(defaultSweepId(sweep), 'sweep-fc64c120');
});

test('the same file always gives the same points in the same order, in another process too (grid, zip and random draws)', () => {
  for (const file of ['zip.yaml', 'random.yaml', 'grid.yaml']) {
    const here = plan(fx(file)).points.map((p) => ({ key: p.key, name: p.name, params: p.params }));
    // A separate process (the CLI): nothing this process holds (a cache, a seeded generator's state) can make them agree.
    const there = exp(['plan', fx(file), '--json']);
    assert.equal(there.code, 0, there.stderr);
    const points = (JSON.parse(there.stdout) as { key: string; name: string; params: Record<string, unknown> }[]).map((p) => ({
      key: p.key,
      name: p.name,
      params: p.params,
    }));
    assert.ok(here.length > 1, file);
    assert.deepEqual(points, here, file);
  }
});

test('extends merges mappings deeply; the child wins', () => {
  const p = plan(fx('child.yaml'));
  const c = p.points[0]!.config;
  assert.equal(c.name, 'child');
  assert.equal(c.description, 'a base file');
  assert.equal(c.data.image_size, 64);
  assert.equal(c.training.epochs, 3);
  assert.equal(c.training.learning_rate, 0.001);
  assert.equal(c.data.path, join(fx(''), 'planet'), 'relative paths resolve against the file that wrote them');
});

test('defaults reproduce the recipe', () => {
  const c = plan(fx('minimal.yaml')).points[0]!.config;
  assert.equal(c.data.image_size, 128);
  assert.equal(c.data.resize, 'nearest');
  assert.deepEqual(c.data.split, { test_size: 0.3, seed: 1 });
  assert.equal(c.model.weights, 'imagenet');
  assert.deepEqual(c.model.trainable_blocks, [5]);
  assert.equal(c.model.head.units, 128);
  assert.equal(c.model.head.initializer, 'he_uniform');
  assert.equal(c.model.preprocessing, 'caffe');
  assert.equal(c.training.optimizer, 'adam');
  assert.equal(c.training.learning_rate, 0.001);
  assert.equal(c.training.batch_size, 128);
  assert.equal(c.training.epochs, 15);
  assert.equal(c.augmentation.rotation_range, 90);
  assert.equal(c.metrics.beta, 2);
  assert.equal(c.checkpoint.monitor, 'val_loss');
});

test('--set overrides are validated like file values, and a list sweeps the path', () => {
  const one = plan(fx('grid.yaml'), ['training.learning_rate=0.05']);
  assert.deepEqual(
    one.points.map((p) => p.params),
    [{ 'training.optimizer': 'adam' }, { 'training.optimizer': 'sgd' }],
  );
  assert.ok(one.points.every((p) => p.config.training.learning_rate === 0.05));
  const swept = plan(fx('minimal.yaml'), ['training.epochs=[1, 2]', 'model.head.units=64']);
  assert.deepEqual(
    swept.points.map((p) => [p.config.training.epochs, p.config.model.head.units]),
    [
      [1, 64],
      [2, 64],
    ],
  );
  const list = plan(fx('minimal.yaml'), ['model.trainable_blocks=[4, 5]']);
  assert.equal(list.points.length, 1, 'a list on a list-valued setting is a value, not a sweep');
  const bad = planExperiment(fx('minimal.yaml'), { set: ['training.epochs=zero', 'training.epoch=3', 'nonsense'] });
  assert.deepEqual(bad.problems.map((p) => p.code).sort(), ['OVERRIDE_SYNTAX', 'OVERRIDE_SYNTAX', 'TYPE']);
  assert.match(bad.problems.find((p) => p.code === 'TYPE')!.file, /--set training\.epochs=zero/);
  assert.match(bad.problems.find((p) => p.message.includes('epoch'))!.message, /did you mean 'training\.epochs'/);
});

test('duplicate points (same resolved config) are planned once', () => {
  const r = planText('name: d\ndata: {path: x}\ntraining: {optimizer: adam}\nsweep:\n  grid:\n    training.momentum: [0.9, 0.9]\n');
  assert.equal(r.plan!.points.length, 1);
  assert.equal(r.plan!.duplicates, 1);
});

test('a relative data.path written in an extends base resolves against the base file, not the extending one', () => {
  const p = plan(fx('nested/uses-base.yaml'));
  assert.equal(p.points[0]!.config.data.path, join(fx(''), 'planet'));
});
