/**
 * The shared feature cache with real training (tiny synthetic data, 32 px, dihedral views, the
 * native CPU backend where built, else wasm): a run trained from the cache is the same run as
 * one trained without it (metrics every epoch and the final weights to 1e-5); damaged entries
 * (bytes changed in place, truncated) are recomputed with unchanged metrics; every part of the
 * key (weights file, image size, frozen depth, preprocessing) gives new entries; exp cache ls|rm|gc.
 */
import { before, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, openSync, readdirSync, readFileSync, truncateSync, writeFileSync, writeSync, closeSync } from 'node:fs';
import { join } from 'node:path';
import { exp, tempDir } from '../helpers/cli.js';
import { trainingBackends } from '../helpers/training.js';
import { readTensors } from '../../src/model/tensors.js';

let tmp: string;
let backend: string;
before(async () => {
  tmp = tempDir('exp-fcache-');
  backend = (await trainingBackends())[0]!;
});

/** The recipe's shape at toy size: blocks 1-4 frozen, dihedral with flips (8 views), no continuous rotation. */
export function cacheExperiment(dir: string, name: string, extra = ''): string {
  const file = join(dir, `${name}.yaml`);
  writeFileSync(
    file,
    [
      `name: ${name}`,
      'data:',
      `  path: ${join(dir, 'data')}`,
      '  image_size: 32',
      '  resize: bilinear',
      '  synth: { count: 64, seed: 0, size: 64 }',
      'model: { weights: none, frozen_blocks: 4, head: { units: 16 } }',
      'augmentation: { rotation_range: 0, dihedral: true, horizontal_flip: true, vertical_flip: true }',
      'training: { batch_size: 16, epochs: 3, learning_rate: 0.001 }',
      'checkpoint: { every_minutes: null }',
      `backend: ${backend}`,
      extra,
    ].join('\n') + '\n',
  );
  return file;
}

const json = <T>(p: string): T => JSON.parse(readFileSync(p, 'utf8')) as T;
/** The one run folder under a runs folder. */
function runFolder(runs: string): string {
  const e = join(runs, readdirSync(runs)[0]!);
  const s = join(e, readdirSync(e)[0]!);
  return join(s, readdirSync(s, { withFileTypes: true }).find((d) => d.isDirectory())!.name);
}
const metrics = (dir: string): Record<string, number>[] =>
  readFileSync(join(dir, 'metrics.jsonl'), 'utf8')
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l) as Record<string, number>);
interface CacheRecord {
  trained_from_cache: boolean;
  computed: number;
  read: number;
  stored: number;
  damaged: number;
  key: string;
}
const cacheRecord = (dir: string): CacheRecord | undefined => json<{ feature_cache?: CacheRecord }>(join(dir, 'run.json')).feature_cache;

/** Trains FILE into a fresh runs folder with the cache in `cacheDir`; returns the run folder. */
function train(file: string, runs: string, cacheDir: string, set: string[] = []): string {
  const r = exp(['run', file, '--runs-dir', runs, ...set.flatMap((s) => ['--set', s])], { cwd: tmp, env: { EXP_CACHE_DIR: cacheDir } });
  assert.equal(r.code, 0, r.stdout + r.stderr);
  return runFolder(runs);
}

function assertClose(a: number, b: number, what: string, tol = 1e-5): void {
  assert.ok(Math.abs(a - b) <= tol * Math.max(1, Math.abs(b)), `${what}: ${a} vs ${b}`);
}

function assertSameMetrics(dir: string, ref: string): void {
  const a = metrics(dir);
  const b = metrics(ref);
  assert.equal(a.length, b.length);
  a.forEach((m, i) => {
    for (const k of Object.keys(b[i]!)) if (k !== 'seconds') assertClose(m[k]!, b[i]![k]!, `epoch ${i + 1} ${k}`);
  });
}

function assertSameWeights(dir: string, ref: string): void {
  const a = readTensors(join(dir, 'checkpoints', 'last'), 'weights');
  const b = new Map(readTensors(join(ref, 'checkpoints', 'last'), 'weights').map((t) => [t.name, t.tensor]));
  assert.equal(a.length, b.size);
  for (const { name, tensor } of a) {
    const x = tensor.dataSync();
    const y = b.get(name)!.dataSync();
    let worst = 0;
    for (let i = 0; i < x.length; i++) worst = Math.max(worst, Math.abs(x[i]! - y[i]!));
    assert.ok(worst <= 1e-5, `${name}: max |diff| ${worst}`);
  }
}

/** Every entry file of the cache, by key. */
function entries(cacheDir: string): Map<string, string[]> {
  const root = join(cacheDir, 'features');
  const out = new Map<string, string[]>();
  if (!existsSync(root)) return out;
  for (const key of readdirSync(root)) {
    const files = readdirSync(join(root, key))
      .filter((v) => /^v\d$/.test(v))
      .flatMap((v) =>
        readdirSync(join(root, key, v))
          .filter((f) => f.endsWith('.feat'))
          .map((f) => join(root, key, v, f)),
      );
    out.set(key, files);
  }
  return out;
}

let reference: string;
let cacheDir: string;
let file: string;

test(
  'a run trained from the feature cache equals the same run trained without it: every epoch metrics and the final weights to 1e-5',
  { timeout: 600_000 },
  () => {
    file = cacheExperiment(tmp, 'same');
    cacheDir = join(tmp, 'cache');
    reference = train(file, join(tmp, 'runs-off'), cacheDir, ['feature_cache.enabled=false']);
    assert.equal(cacheRecord(reference), undefined, 'the run without the cache records none');
    assert.match(readFileSync(join(reference, 'train.log'), 'utf8'), /feature cache: off/);

    // The first run fills the cache as it trains; the second reads every feature from it.
    const filling = train(file, join(tmp, 'runs-fill'), cacheDir);
    const fill = cacheRecord(filling)!;
    assert.equal(fill.trained_from_cache, true);
    assert.ok(fill.computed > 0 && fill.stored === fill.computed, JSON.stringify(fill));
    const cached = train(file, join(tmp, 'runs-cached'), cacheDir);
    const rec = cacheRecord(cached)!;
    assert.equal(rec.computed, 0, 'the same seed draws the same views: all are in the cache');
    const split = json<{ split: { train: number; val: number } }>(join(cached, 'summary.json')).split;
    assert.equal(rec.read, 3 * (split.train + split.val), 'every training and validation image of 3 epochs came from the cache');
    assert.equal(json<{ feature_cache: { fill_seconds: number } }>(join(filling, 'summary.json')).feature_cache.fill_seconds >= 0, true);
    for (const dir of [filling, cached]) {
      assertSameMetrics(dir, reference);
      assertSameWeights(dir, reference);
    }
  },
);

test('a damaged feature entry (bytes changed in place, truncated) is recomputed, said in the log, and the metrics are unchanged', { timeout: 600_000 }, () => {
  const [key, files] = [...entries(cacheDir)][0]!;
  // Validation images are read in every epoch from v0 (the identity view).
  const v0 = files.filter((f) => f.includes(`${key}/v0/`)).sort();
  assert.ok(v0.length >= 2);
  const fd = openSync(v0[0]!, 'r+');
  writeSync(fd, Buffer.from([1, 2, 3, 4]), 0, 4, 100);
  closeSync(fd);
  truncateSync(v0[1]!, 1000);
  const dir = train(file, join(tmp, 'runs-damaged'), cacheDir);
  const rec = cacheRecord(dir)!;
  assert.equal(rec.damaged, 2, JSON.stringify(rec));
  assert.equal(rec.computed, 2, 'just the two damaged entries are computed again');
  const log = readFileSync(join(dir, 'train.log'), 'utf8');
  assert.match(log, /is damaged \(checksum mismatch\): it is recomputed/);
  assert.match(log, /is damaged \(1000 bytes, expected \d+\): it is recomputed/);
  assertSameMetrics(dir, reference);
  assertSameWeights(dir, reference);
});

test(
  'a full disk while writing a feature entry: the run computes what it cannot store, says so in the log, and trains the same run',
  { timeout: 600_000 },
  (t) => {
    // A real ENOSPC: the cache's folder on a 256 KiB tmpfs (a batch's claims and a few dozen 8 KiB entries fit).
    const full = join(tmp, 'cache-full');
    const mnt = join(full, 'features');
    mkdirSync(mnt, { recursive: true });
    const m = spawnSync('mount', ['-t', 'tmpfs', '-o', 'size=256k', 'tmpfs', mnt], { encoding: 'utf8' });
    if (m.status !== 0) return t.skip(`cannot mount a small tmpfs here (${m.stderr.trim()}): needs CAP_SYS_ADMIN`);
    try {
      const dir = train(file, join(tmp, 'runs-full'), full);
      const rec = cacheRecord(dir)!;
      assert.ok(rec.stored > 0 && rec.stored < rec.computed, JSON.stringify(rec));
      assert.match(readFileSync(join(dir, 'train.log'), 'utf8'), /feature cache: cannot store \S+ \(ENOSPC: no space left on device/);
      const left = readdirSync(join(mnt, rec.key), { recursive: true }).map(String);
      assert.deepEqual(
        left.filter((f) => f.endsWith('.tmp') || f.endsWith('.claim')),
        [],
        'no temporary file or claim is left behind',
      );
      assertSameMetrics(dir, reference);
      assertSameWeights(dir, reference);
    } finally {
      spawnSync('umount', [mnt]);
    }
  },
);

test('changing the weights file, the image size, the frozen depth or the preprocessing gives new feature entries', { timeout: 600_000 }, () => {
  const weights = join(tmp, 'base.h5');
  const ex = exp(['export', reference, '--format', 'keras-h5', '--out', weights], { cwd: tmp });
  assert.equal(ex.code, 0, ex.stdout + ex.stderr);
  const keysBefore = new Set(entries(cacheDir).keys());
  const variants = [`model.weights=${weights}`, 'data.image_size=48', 'model.frozen_blocks=3', 'model.preprocessing=none'];
  const seen = new Set<string>();
  for (const [i, v] of variants.entries()) {
    const dir = train(file, join(tmp, `runs-key-${i}`), cacheDir, [v, 'training.epochs=1']);
    const rec = cacheRecord(dir)!;
    assert.ok(!keysBefore.has(rec.key) && !seen.has(rec.key), `${v} gets a key of its own`);
    assert.ok(rec.computed > 0 && rec.read === 0, `${v}: nothing read from another key's entries`);
    seen.add(rec.key);
  }
  // A learning rate is not part of the key: the same entries are read.
  const lr = cacheRecord(train(file, join(tmp, 'runs-key-lr'), cacheDir, ['training.learning_rate=0.0005', 'training.epochs=1']))!;
  assert.ok(keysBefore.has(lr.key) && lr.computed === 0);
});

test('exp cache ls lists each key with its entries and size; gc bounds it; rm frees a key', () => {
  const env = { EXP_CACHE_DIR: cacheDir };
  const ls = exp(['cache', 'ls', '--json'], { cwd: tmp, env });
  assert.equal(ls.code, 0, ls.stderr);
  const keys = (JSON.parse(ls.stdout) as { keys: { key: string; entries: number; bytes: number; parts: { image_size: number } }[] }).keys;
  const onDisk = entries(cacheDir);
  assert.equal(keys.length, onDisk.size);
  for (const k of keys) assert.equal(k.entries, onDisk.get(k.key)!.length);
  assert.ok(keys.some((k) => k.parts.image_size === 48));
  const total = keys.reduce((a, k) => a + k.bytes, 0);
  const gc = exp(['cache', 'gc', '--max-gb', String(total / 2 / 1e9)], { cwd: tmp, env });
  assert.equal(gc.code, 0, gc.stderr);
  const left = [...entries(cacheDir).values()].flat().length;
  assert.ok(left > 0 && left < keys.reduce((a, k) => a + k.entries, 0), gc.stdout);
  const rm = exp(['cache', 'rm', keys[0]!.key], { cwd: tmp, env });
  assert.equal(rm.code, 0, rm.stderr);
  assert.equal(entries(cacheDir).has(keys[0]!.key), false);
  const bad = exp(['cache', 'rm', 'ffffffffffffffff'], { cwd: tmp, env });
  assert.equal(bad.code, 2);
  assert.match(bad.stderr, /PATH_NOT_FOUND/);
});

test('feature_cache.dtype float16 stores half the bytes; a run from it equals the run that filled it and stays near float32', { timeout: 600_000 }, () => {
  const half = join(tmp, 'cache-f16');
  const set = ['feature_cache.dtype=float16'];
  const filling = train(file, join(tmp, 'runs-f16-fill'), half, set);
  const cached = train(file, join(tmp, 'runs-f16-cached'), half, set);
  const rec = cacheRecord(cached)!;
  assert.equal(rec.computed, 0, 'every feature read back from the float16 entries');
  // Computed features are rounded as the stored ones are, so who filled the cache does not change the run.
  assertSameMetrics(cached, filling);
  assertSameWeights(cached, filling);
  const [key16, files16] = [...entries(half)][0]!;
  assert.notEqual(key16, cacheRecord(runFolder(join(tmp, 'runs-cached')))!.key, 'float16 is a key of its own');
  const entry = readFileSync(files16[0]!);
  assert.equal(entry.length, 32 + 2 * entry.readUInt32LE(16), 'a float16 entry is its header and 2 bytes per value');
  // 11 significant bits per feature: the run moves, but only a little.
  const a = metrics(cached).at(-1)!;
  const b = metrics(reference).at(-1)!;
  assert.ok(Math.abs(a.val_loss! - b.val_loss!) < 0.01, `val_loss ${a.val_loss} (float16) vs ${b.val_loss} (float32)`);
});
