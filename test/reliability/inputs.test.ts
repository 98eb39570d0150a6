/**
 * Hostile input, no training: every case ends in a coded error with a place and a fix (exit
 * 2), never in "internal error", a hang or a write outside the runs folder. Each case is a
 * regression test named after what broke (see the reliability issue).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import seedrandom from 'seedrandom';
import { expIn, tempDir, BIN } from '../helpers/cli.js';
import { parse } from 'yaml';

const minimal = 'name: x\ndata: { path: ./data }\n';

test('regression: extends pointing at /dev/zero, a FIFO, a folder, /etc/passwd or a list is a coded problem at the extends line (it hung, or was dropped in silence)', async () => {
  const dir = tempDir('exp-rel-');
  mkdirSync(join(dir, 'folder'));
  execFileSync('mkfifo', [join(dir, 'fifo.yaml')]);
  writeFileSync(join(dir, 'list.yaml'), '- a\n- b\n');
  const cases: [string, RegExp][] = [
    ['/dev/zero', /is a device, not a regular file/],
    [join(dir, 'fifo.yaml'), /is a FIFO \(named pipe\), not a regular file/],
    [join(dir, 'folder'), /is a folder, not a regular file/],
    ['/etc/passwd', /top level is a string, not a mapping/],
    [join(dir, 'list.yaml'), /top level is a list, not a mapping/],
  ];
  for (const [target, why] of cases) {
    writeFileSync(join(dir, 'e.yaml'), `name: x\nextends: ${target}\ndata: { path: ./data }\n`);
    const r = await expIn(['validate', 'e.yaml'], { cwd: dir });
    assert.equal(r.code, 2, `${target}: ${r.stderr}`);
    assert.match(r.stderr, /^e\.yaml:2:10 +extends +.*\[EXTENDS_MISSING\]/m, target);
    assert.match(r.stderr, why, target);
  }
});

test('regression: data.csv or data.images outside data.path is refused with its position before anything is read', async () => {
  const dir = tempDir('exp-rel-');
  writeFileSync(
    join(dir, 'e.yaml'),
    'name: x\ndata: { path: ./data, csv: ../../../etc/shadow }\nsweep: { grid: { data.images: [train-jpg, ../../secret] } }\n',
  );
  const r = await expIn(['validate', 'e.yaml'], { cwd: dir });
  assert.equal(r.code, 2);
  assert.match(r.stderr, /e\.yaml:2:\d+ +data\.csv +data\.csv '\.\.\/\.\.\/\.\.\/etc\/shadow' points outside data\.path.*\[PATH_ESCAPES\]/);
  assert.match(r.stderr, /sweep\.grid\.data\.images\.1 +data\.images '\.\.\/\.\.\/secret' points outside data\.path/);
  assert.doesNotMatch(r.stderr + r.stdout, /root:/);
});

test('regression: --sweep is a folder name, not a path; an over-long one is a coded error, not ENAMETOOLONG', async () => {
  const dir = tempDir('exp-rel-');
  writeFileSync(join(dir, 'e.yaml'), 'name: x\ndata: { path: ./data, synth: { count: 20 } }\nmodel: { weights: none }\n');
  for (const bad of ['../../../../x/ESC1', '', '.', '..', 'a/b', 'x'.repeat(300)]) {
    const r = await expIn(['run', 'e.yaml', '--sweep', bad, '--runs-dir', join(dir, 'runs'), '--dry-run'], { cwd: dir });
    assert.equal(r.code, 2, `--sweep '${bad.slice(0, 20)}': ${r.stderr}`);
    assert.match(r.stderr, /\[BAD_OPTION_VALUE\]/);
  }
  assert.equal(existsSync(join(dir, 'x')), false);
  assert.equal(existsSync(join(dir, 'runs')), false, 'nothing was written');
});

test('regression: a 10^9-point grid is refused at once; max_runs has a ceiling; a split seed of 2^32 is refused', async () => {
  const dir = tempDir('exp-rel-');
  const axis = `[${Array.from({ length: 1000 }, (_, i) => i + 1).join(', ')}]`;
  writeFileSync(
    join(dir, 'big.yaml'),
    `${minimal}sweep:\n  max_runs: 100000\n  grid:\n    training.epochs: ${axis}\n    training.batch_size: ${axis}\n    model.head.units: ${axis}\n`,
  );
  const big = await expIn(['plan', 'big.yaml'], { cwd: dir });
  assert.equal(big.code, 2);
  assert.match(big.stderr, /the sweep has 1000000000 points, more than sweep\.max_runs \(100000\).*\[SWEEP_TOO_LARGE\]/);
  writeFileSync(join(dir, 'ceiling.yaml'), `${minimal}sweep: { max_runs: 1000000000, grid: { training.epochs: [1, 2] } }\n`);
  assert.match((await expIn(['validate', 'ceiling.yaml'], { cwd: dir })).stderr, /sweep\.max_runs +expected a number <= 100000.*\[RANGE\]/);
  writeFileSync(join(dir, 'seed.yaml'), 'name: x\ndata: { path: ./d, split: { seed: 4294967296 } }\n');
  const seed = await expIn(['validate', 'seed.yaml'], { cwd: dir });
  assert.equal(seed.code, 2);
  assert.match(seed.stderr, /data\.split\.seed +expected a number <= 4294967295/);
});

test('regression: --set training.__proto__=... is refused; --set training={epochs: 2} keeps the other training settings', async () => {
  const dir = tempDir('exp-rel-');
  writeFileSync(join(dir, 'e.yaml'), `${minimal}training: { batch_size: 32, epochs: 5 }\n`);
  const proto = await expIn(['plan', 'e.yaml', '--set', 'training.__proto__={polluted: 1}'], { cwd: dir });
  assert.equal(proto.code, 2);
  assert.match(proto.stderr, /'training\.__proto__' is not a setting.*\[OVERRIDE_SYNTAX\]/);
  assert.equal(({} as Record<string, unknown>).polluted, undefined);
  const merged = await expIn(['plan', 'e.yaml', '--set', 'training={epochs: 2}', '--json'], { cwd: dir });
  assert.equal(merged.code, 0, merged.stderr);
  const cfg = (JSON.parse(merged.stdout) as { config: { training: { epochs: number; batch_size: number } } }[])[0]!.config;
  assert.deepEqual([cfg.training.epochs, cfg.training.batch_size], [2, 32]);
});

test('regression: on a fresh clone, exp run of the recipe reports the missing data and weights at once (exit 2) and writes nothing', async () => {
  const home = tempDir('exp-rel-home-');
  const runs = join(home, 'runs');
  const r = await expIn(['run', 'experiments/vgg16-block5.yaml', '--runs-dir', runs], { env: { HOME: home, EXP_WEIGHTS_DIR: join(home, 'none') } });
  assert.equal(r.code, 2, r.stdout + r.stderr);
  assert.match(
    r.stderr,
    /experiments\/vgg16-block5\.yaml:\d+:\d+ +data\.path +data folder .*data\/planet does not exist.*exp data synth --out .*\[DATA_NOT_FOUND\]/,
  );
  assert.match(r.stderr, /model\.weights +.*vgg16_weights_tf_dim_ordering_tf_kernels_notop\.h5.* not found.*exp weights fetch vgg16.*\[WEIGHTS_NOT_FOUND\]/);
  assert.equal(existsSync(runs), false, 'no run folder was written');
  const pre = await expIn(['validate', '--preflight', 'experiments/vgg16-block5.yaml'], { env: { HOME: home, EXP_WEIGHTS_DIR: join(home, 'none') } });
  assert.equal(pre.code, 2);
  assert.match(pre.stderr, /\[DATA_NOT_FOUND\][\s\S]*\[WEIGHTS_NOT_FOUND\]|\[WEIGHTS_NOT_FOUND\][\s\S]*\[DATA_NOT_FOUND\]/);
  assert.equal((await expIn(['validate', 'experiments/vgg16-block5.yaml'])).code, 0, 'without --preflight only the file is checked');
});

test('regression: a YAML alias bomb is a coded error, not an internal error', async () => {
  const dir = tempDir('exp-rel-');
  const lines = ['a0: &a0 [x, x, x, x, x, x, x, x, x]'];
  for (let i = 1; i < 12; i++)
    lines.push(`a${i}: &a${i} [*a${i - 1}, *a${i - 1}, *a${i - 1}, *a${i - 1}, *a${i - 1}, *a${i - 1}, *a${i - 1}, *a${i - 1}, *a${i - 1}]`);
  writeFileSync(join(dir, 'bomb.yaml'), `${lines.join('\n')}\nname: x\ndata: { path: ./d }\n`);
  const r = await expIn(['validate', 'bomb.yaml'], { cwd: dir });
  assert.equal(r.code, 2, r.stderr);
  assert.match(r.stderr, /\[YAML_SYNTAX\]/);
  assert.doesNotMatch(r.stderr, /internal error/);
});

test('fuzz: random bytes, random YAML-ish text, deep nesting and alias chains given to exp validate always end in a coded error, exit 2, never an internal error', async () => {
  const dir = tempDir('exp-fuzz-');
  const rng = seedrandom('exp-fuzz');
  const pick = <T>(xs: readonly T[]): T => xs[Math.floor(rng() * xs.length)]!;
  const tokens = [
    'name:',
    'data:',
    'path:',
    ' ',
    '\n',
    '  ',
    '- ',
    '[',
    ']',
    '{',
    '}',
    ',',
    ':',
    '&a',
    '*a',
    '!!str',
    '"',
    "'",
    '#',
    '|',
    '>',
    '?',
    'null',
    '1e999',
    '-0',
    'training:',
    'sweep:',
    'grid:',
    'extends:',
    '\t',
    '%YAML 1.2',
    '---',
    '...',
    '\u0000',
    '\u00ff',
  ];
  const cases: string[] = [];
  for (let i = 0; i < 60; i++) cases.push(Buffer.from(Array.from({ length: 1 + Math.floor(rng() * 400) }, () => Math.floor(rng() * 256))).toString('latin1'));
  for (let i = 0; i < 80; i++) cases.push(Array.from({ length: 1 + Math.floor(rng() * 60) }, () => pick(tokens)).join(''));
  for (const depth of [100, 1000, 10000])
    cases.push(`name: x\ndata: ${'['.repeat(depth)}${']'.repeat(depth)}\n`, `name: x\ndata: ${'{a: '.repeat(depth)}1${'}'.repeat(depth)}\n`);
  cases.push('a: &a [1]\n' + Array.from({ length: 200 }, (_, i) => `b${i}: *a`).join('\n') + '\nname: x\n');
  let n = 0;
  for (const text of cases) {
    writeFileSync(join(dir, 'f.yaml'), text);
    const r = await expIn(['validate', 'f.yaml'], { cwd: dir });
    n++;
    if (r.code === 0) continue; // a random text can happen to be a valid experiment: fine
    assert.equal(r.code, 2, `case ${n}: ${JSON.stringify(text.slice(0, 80))}\n${r.stderr}`);
    assert.match(r.stderr, /\[[A-Z_]+\]/, `case ${n} has a code`);
    assert.doesNotMatch(r.stderr, /internal error/, `case ${n}`);
  }
  assert.ok(n >= 140);
});

test('images that are a symlink to /dev/zero or a FIFO are bad images (bounded reads), reported under on_bad_image', { timeout: 120_000 }, async () => {
  const dir = tempDir('exp-rel-');
  const data = join(dir, 'data');
  const made = spawnSync(process.execPath, [BIN, 'data', 'synth', '--out', data, '--count', '12', '--size', '32'], { encoding: 'utf8' });
  assert.equal(made.status, 0, made.stderr);
  const imgs = readdirSync(join(data, 'train-jpg'))
    .filter((f) => f.endsWith('.jpg'))
    .sort();
  const { rmSync } = await import('node:fs');
  rmSync(join(data, 'train-jpg', imgs[0]!));
  symlinkSync('/dev/zero', join(data, 'train-jpg', imgs[0]!));
  rmSync(join(data, 'train-jpg', imgs[1]!));
  execFileSync('mkfifo', [join(data, 'train-jpg', imgs[1]!)]);
  const { loadDataset } = await import('../../src/data/planet.js');
  const cfg = parse(
    `{ path: ${data}, csv: train_v2.csv, images: train-jpg, image_ext: .jpg, image_size: 32, resize: nearest, limit: null, split: { test_size: 0.3, seed: 1 }, on_bad_image: error, max_image_bytes: 67108864, tags: null, synth: null }`,
  ) as Parameters<typeof loadDataset>[0];
  await assert.rejects(loadDataset(cfg, { cacheDir: tempDir() }), (e: Error & { code?: string }) => {
    assert.equal(e.code, 'BAD_IMAGES');
    assert.match(e.message, new RegExp(`${imgs[0]}.*not a regular file \\(a device\\)`));
    assert.match(e.message, new RegExp(`${imgs[1]}.*not a regular file \\(a FIFO\\)`));
    return true;
  });
  const skipped = await loadDataset({ ...cfg, on_bad_image: 'skip' }, { cacheDir: tempDir() });
  assert.equal(skipped.names.length, 10); // (the test's timeout guards against a hang: a FIFO read never returns)
});
