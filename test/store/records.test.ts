/**
 * The records of a run, sweep and ensemble folder are checked when read: a hand-edited or
 * foreign run.json, summary.json, split.json, index.json, checkpoint state.json or
 * ensemble.json is a coded error naming the file and the field (and left as it is), never a
 * value cast to a type it does not have. Real folders: planned by the real CLI, then edited.
 */
import { before, test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { exp, tempDir } from '../helpers/cli.js';
import { tinyExperiment } from '../helpers/training.js';
import { ExpError } from '../../src/errors.js';
import { readRunRecord, readSummary } from '../../src/store/run.js';
import { readSplitRecord } from '../../src/store/split.js';
import { readSweepIndex } from '../../src/store/sweep-index.js';
import { readEnsembleManifest } from '../../src/store/ensemble.js';
import { RunFolder } from '../../src/store/folder.js';
import { checkpointDir, checkpointStatePath, ensembleManifestPath, runPath, splitPath, sweepPath } from '../../src/store/layout.js';

let tmp: string;
let sweepDir: string;
let runDir: string;
const env = (): NodeJS.ProcessEnv => ({ EXP_RUNS_DIR: join(tmp, 'runs'), MLFLOW_TRACKING_URI: '', MLFLOW_EXPERIMENT_NAME: '' });

before(() => {
  tmp = tempDir('exp-records-');
  const file = tinyExperiment(tmp, { backend: 'cpu', extra: 'sweep: { grid: { training.learning_rate: [0.001, 0.0005] } }' });
  const r = exp(['run', file, '--dry-run'], { env: env(), cwd: tmp });
  assert.equal(r.code, 0, r.stderr + r.stdout);
  sweepDir = join(tmp, 'runs', 'tiny', readdirSync(join(tmp, 'runs', 'tiny'))[0]!);
  const runDirs = readdirSync(sweepDir).filter((d) => existsSync(runPath(join(sweepDir, d), 'config')));
  runDir = join(sweepDir, runDirs.sort()[0]!);
});

/** Runs `read` and returns the coded error it throws (failing when it throws none, or an uncoded one). */
function codedError(read: () => unknown): ExpError {
  try {
    read();
  } catch (e) {
    assert.ok(e instanceof ExpError, `not a coded error: ${String(e)}`);
    return e;
  }
  assert.fail('no error');
}

/** Writes `value` as the file's JSON, expects RUN_FILE_CORRUPT naming the file and `field` (or saying `field` when it is a RegExp), and the file left as it was. */
function expectCorrupt(file: string, value: unknown, field: string | RegExp, read: () => unknown): void {
  mkdirSync(join(file, '..'), { recursive: true });
  const text = JSON.stringify(value);
  writeFileSync(file, text);
  const e = codedError(read);
  assert.equal(e.code, 'RUN_FILE_CORRUPT', e.message);
  assert.equal(e.file, file);
  assert.ok(e.message.includes(file), e.message);
  assert.match(e.message, typeof field === 'string' ? new RegExp(`'${field}'`) : field);
  assert.ok(e.fix, 'a fix is given');
  assert.equal(readFileSync(file, 'utf8'), text, 'the damaged file is left as it is');
}

test('a hand-edited run.json with a wrong field type is RUN_FILE_CORRUPT naming run.json and the field', () => {
  const file = runPath(runDir, 'record');
  expectCorrupt(file, { key: 'abc', status: 42, attempts: 1 }, 'status', () => readRunRecord(runDir));
  expectCorrupt(file, { key: 'abc', status: 'done', attempts: 1 }, 'status', () => readRunRecord(runDir));
  expectCorrupt(file, { key: 'abc', status: 'completed', attempts: 'two' }, 'attempts', () => new RunFolder(runDir).record());
  expectCorrupt(file, { status: 'completed', tags: { team: 7 } }, 'tags', () => readRunRecord(runDir));
  writeFileSync(file, JSON.stringify({ key: 'abc', status: 'completed', attempts: 1, future_field: true }));
  assert.equal(readRunRecord(runDir)?.status, 'completed', 'unknown fields are kept: a newer exp writes them');
});

test('a hand-edited summary.json with a wrong field type is RUN_FILE_CORRUPT naming summary.json and the field', () => {
  const file = runPath(runDir, 'summary');
  expectCorrupt(file, { status: 'completed', best: 'epoch 3', final: null }, 'best', () => readSummary(runDir));
  expectCorrupt(file, { status: 'completed', best: null, epochs_completed: '3' }, 'epochs_completed', () => new RunFolder(runDir).summary());
  expectCorrupt(file, ['not', 'a', 'summary'], /it is a list, not an object/, () => readSummary(runDir));
});

test('a hand-edited split.json with a wrong field type is RUN_FILE_CORRUPT naming split.json and the field', () => {
  const file = splitPath(runDir, 'record');
  expectCorrupt(file, { hash: 12345, train: 10, val: 5 }, 'hash', () => readSplitRecord(runDir));
  expectCorrupt(file, { hash: 'abc', train: 'ten' }, 'train', () => new RunFolder(runDir).split());
});

test("a hand-edited sweep index.json is RUN_FILE_CORRUPT naming index.json and the point's field", () => {
  const file = sweepPath(sweepDir, 'index');
  const good = JSON.parse(readFileSync(file, 'utf8')) as { points: Record<string, unknown>[] };
  expectCorrupt(file, { ...good, points: good.points.map((p, i) => (i === 1 ? { ...p, dir: 7 } : p)) }, 'dir', () => readSweepIndex(sweepDir));
  expectCorrupt(file, { ...good, points: 'all of them' }, 'points', () => readSweepIndex(sweepDir));
  writeFileSync(file, JSON.stringify(good));
});

test('a hand-edited ensemble.json is RUN_FILE_CORRUPT naming it and the field', () => {
  const dir = join(tmp, 'ensemble');
  expectCorrupt(ensembleManifestPath(dir), { members: ['../a', 2], tags: ['x'], thresholds: [0.5] }, 'members', () => readEnsembleManifest(dir));
  expectCorrupt(ensembleManifestPath(dir), { members: ['../a'], tags: ['x'], thresholds: '0.5' }, 'thresholds', () => readEnsembleManifest(dir));
});

test('a hand-edited thresholds.json is RUN_FILE_CORRUPT naming thresholds.json and the field; a whole one reads back as written', () => {
  const folder = new RunFolder(runDir);
  const file = runPath(runDir, 'thresholds');
  const tags = ['clear', 'haze'];
  expectCorrupt(file, { tags, thresholds: '0.5' }, 'thresholds', () => folder.thresholds(tags));
  expectCorrupt(file, { tags: 'clear', thresholds: [0.5, 0.5] }, 'tags', () => folder.thresholds(tags));
  expectCorrupt(file, { tags, thresholds: [0.5, 1.5] }, /'thresholds' has 1.5 at 1, not a probability/, () => folder.thresholds(tags));
  expectCorrupt(file, { tags: ['clear', 'cloudy'], thresholds: [0.5, 0.5] }, /tuned for other tags/, () => folder.thresholds(tags));
  const whole = {
    version: 1 as const,
    tags,
    thresholds: [0.2, 0.7],
    beta: 2,
    tta: false,
    fbeta_at_threshold: 0.5,
    fbeta_tuned: 0.6,
    held_out: { at_threshold: 0.5, tuned: 0.55 },
  };
  folder.writeThresholds(whole);
  assert.deepEqual(folder.thresholds(tags), whole);
  rmSync(file);
  assert.equal(folder.thresholds(tags), undefined, 'a run without thresholds.json has none (it scores at metrics.threshold)');
});

test('a hand-edited tags.txt (empty, a repeated tag, a tag with a space) is RUN_FILE_CORRUPT naming tags.txt; a whole one reads back as written', () => {
  const folder = new RunFolder(runDir);
  const file = runPath(runDir, 'tags');
  assert.equal(folder.tags(), undefined, 'a run that has not trained has no tags');
  for (const [text, says] of [
    ['\n\n', /holds no tags/],
    ['clear\nhaze\nclear\n', /tag 'clear' is repeated/],
    ['clear\npartly cloudy\n', /tag 'partly cloudy' is repeated or holds a space/],
  ] as const) {
    writeFileSync(file, text);
    const e = codedError(() => folder.tags());
    assert.equal(e.code, 'RUN_FILE_CORRUPT', e.message);
    assert.equal(e.file, file);
    assert.ok(e.message.includes(file), e.message);
    assert.match(e.message, says);
    assert.ok(e.fix);
    assert.equal(readFileSync(file, 'utf8'), text, 'the damaged file is left as it is');
  }
  folder.writeTags(['clear', 'haze']);
  assert.deepEqual(folder.tags(), ['clear', 'haze']);
  rmSync(file);
});

test("a hand-edited checkpoint state.json with a wrong field type is CHECKPOINT_FORMAT naming the checkpoint's state.json", async () => {
  const { readCheckpointInfo } = await import('../../src/core/checkpoint.js');
  const ckpt = checkpointDir(runDir, 'last');
  const file = checkpointStatePath(ckpt);
  mkdirSync(ckpt, { recursive: true });
  writeFileSync(file, JSON.stringify({ version: 2, epoch: '3', state: { epoch: 3 } }));
  const e = codedError(() => readCheckpointInfo(ckpt));
  assert.equal(e.code, 'CHECKPOINT_FORMAT');
  assert.equal(e.file, file);
});

test('exp runs and exp compare over a folder with a hand-edited run.json exit 1 with RUN_FILE_CORRUPT naming the file, not an internal error', () => {
  const file = runPath(runDir, 'record');
  writeFileSync(file, JSON.stringify({ key: 'abc', status: 'finished', attempts: 1 }));
  for (const args of [['runs'], ['compare', sweepDir]]) {
    const r = exp(args, { env: env(), cwd: tmp });
    assert.equal(r.code, 1, `${args.join(' ')}: ${r.stderr}${r.stdout}`);
    assert.match(r.stderr, /RUN_FILE_CORRUPT/);
    assert.ok(r.stderr.includes(file), r.stderr);
  }
  assert.equal(readFileSync(file, 'utf8'), JSON.stringify({ key: 'abc', status: 'finished', attempts: 1 }));
});

test('exp run over a sweep whose point.json was hand-edited refuses with RUN_FILE_CORRUPT and keeps the file (its uid links the run to MLflow)', () => {
  const other = join(
    sweepDir,
    readdirSync(sweepDir)
      .filter((d) => existsSync(runPath(join(sweepDir, d), 'config')))
      .sort()[1]!,
  );
  const file = runPath(other, 'point');
  const text = JSON.stringify({ uid: 42, key: 'abc' });
  writeFileSync(file, text);
  const r = exp(['run', join(tmp, 'tiny.yaml'), '--dry-run'], { env: env(), cwd: tmp });
  assert.equal(r.code, 1, r.stderr + r.stdout);
  assert.match(r.stderr, /RUN_FILE_CORRUPT/);
  assert.ok(r.stderr.includes(file), r.stderr);
  assert.equal(readFileSync(file, 'utf8'), text);
});
