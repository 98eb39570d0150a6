/**
 * The feature cache shared across a sweep: 4 points (learning rate x head units) with 2 local
 * workers training at once read one set of entries, and the frozen blocks run once per image and
 * view in all: the features the points computed add up to the entries on disk, not to 4x them.
 * With a continuous rotation only validation features are cached, and the log says so at start.
 */
import { before, test } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { exp, tempDir } from '../helpers/cli.js';
import { trainingBackends } from '../helpers/training.js';

let tmp: string;
let backend: string;
before(async () => {
  tmp = tempDir('exp-fcache-sweep-');
  backend = (await trainingBackends())[0]!;
});

function experiment(name: string, augmentation: string, extra = ''): string {
  const file = join(tmp, `${name}.yaml`);
  writeFileSync(
    file,
    [
      `name: ${name}`,
      'data:',
      `  path: ${join(tmp, 'data')}`,
      '  image_size: 32',
      '  resize: bilinear',
      '  synth: { count: 64, seed: 0, size: 64 }',
      'model: { weights: none, frozen_blocks: 4, head: { units: 16 } }',
      `augmentation: ${augmentation}`,
      'training: { batch_size: 16, epochs: 2, learning_rate: 0.001 }',
      'checkpoint: { every_minutes: null }',
      `backend: ${backend}`,
      extra,
    ].join('\n') + '\n',
  );
  return file;
}

const json = <T>(p: string): T => JSON.parse(readFileSync(p, 'utf8')) as T;
const pointDirs = (runs: string, name: string): string[] => {
  const e = join(runs, name);
  const s = join(e, readdirSync(e)[0]!);
  return readdirSync(s, { withFileTypes: true })
    .filter((d) => d.isDirectory())
    .map((d) => join(s, d.name));
};
interface CacheRecord {
  trained_from_cache: boolean;
  validation_from_cache: boolean;
  computed: number;
  read: number;
  stored: number;
  key: string;
}
const cacheRecord = (dir: string): CacheRecord => json<{ feature_cache: CacheRecord }>(join(dir, 'run.json')).feature_cache;
const entryFiles = (keyDir: string): string[] =>
  readdirSync(keyDir)
    .filter((v) => /^v\d$/.test(v))
    .flatMap((v) => readdirSync(join(keyDir, v)).filter((f) => f.endsWith('.feat')));

test(
  'a 4-point sweep with 2 local workers shares one set of feature entries: the frozen blocks run once per image and view in all',
  { timeout: 600_000 },
  (t) => {
    const file = experiment(
      'shared',
      '{ rotation_range: 0, dihedral: true, horizontal_flip: true, vertical_flip: true }',
      'sweep: { grid: { training.learning_rate: [0.001, 0.0005], model.head.units: [16, 24] } }',
    );
    const cache = join(tmp, 'cache');
    const runs = join(tmp, 'runs');
    const r = exp(['run', file, '--runs-dir', runs, '--workers', '2'], { cwd: tmp, env: { EXP_CACHE_DIR: cache } });
    assert.equal(r.code, 0, r.stdout + r.stderr);
    const dirs = pointDirs(runs, 'shared');
    assert.equal(dirs.length, 4);
    const recs = dirs.map(cacheRecord);
    const key = recs[0]!.key;
    assert.ok(
      recs.every((x) => x.key === key && x.trained_from_cache),
      'the points differ only in the head and learning rate: one key',
    );
    const split = json<{ split: { train: number; val: number } }>(join(dirs[0]!, 'summary.json')).split;
    for (const x of recs) assert.equal(x.computed + x.read, 2 * (split.train + split.val), 'each point saw every image of each epoch once');
    const computed = recs.reduce((a, x) => a + x.computed, 0);
    const stored = recs.reduce((a, x) => a + x.stored, 0);
    const onDisk = entryFiles(join(cache, 'features', key)).length;
    t.diagnostic(`features computed per point: ${recs.map((x) => x.computed).join(', ')}; read: ${recs.map((x) => x.read).join(', ')}; entries: ${onDisk}`);
    assert.equal(computed, onDisk, `computed ${recs.map((x) => x.computed).join(' + ')} features for ${onDisk} entries: none twice`);
    assert.equal(stored, onDisk);
    assert.ok(computed < 2 * (split.train + split.val), 'fewer than one point alone would compute without the cache');
  },
);

test('with a continuous rotation only validation features are cached, and the log says so at start', { timeout: 600_000 }, () => {
  const file = experiment('rotating', '{ rotation_range: 90 }');
  const cache = join(tmp, 'cache-rot');
  const runs = join(tmp, 'runs-rot');
  const r = exp(['run', file, '--runs-dir', runs], { cwd: tmp, env: { EXP_CACHE_DIR: cache } });
  assert.equal(r.code, 0, r.stdout + r.stderr);
  const dir = pointDirs(runs, 'rotating')[0]!;
  const log = readFileSync(join(dir, 'train.log'), 'utf8');
  assert.match(log, /feature cache: key \w+ in .*: validation features only: augmentation.rotation_range 90 is a continuous rotation/);
  assert.ok(log.indexOf('feature cache:') < log.indexOf('epoch 1/'), 'said before training starts');
  const rec = cacheRecord(dir);
  const split = json<{ split: { val: number } }>(join(dir, 'summary.json')).split;
  assert.equal(rec.trained_from_cache, false);
  assert.equal(rec.validation_from_cache, true);
  assert.equal(rec.computed, split.val, 'validation images once');
  assert.equal(rec.read, split.val, 'and read in the second epoch');
  assert.equal(entryFiles(join(cache, 'features', rec.key)).length, split.val);
});
