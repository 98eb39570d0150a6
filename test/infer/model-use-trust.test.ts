/**
 * What exp trusts when it uses a trained model (issue 18, items 3, 4, 5, 8, 9, 16, 17), probed on
 * copies of one tiny run trained once: outputs never replace a device or a file exp did not
 * write; every read of a run folder's files is bounded and regular-file-only (a checkpoint
 * linked to /dev/zero is refused, not read without end); a damaged best checkpoint, tags.txt,
 * thresholds.json, split or point.json is a coded error naming the file, never a silent fallback.
 */
import { before, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import {
  copyFileSync,
  cpSync,
  existsSync,
  linkSync,
  lstatSync,
  mkdirSync,
  readdirSync,
  readFileSync,
  renameSync,
  rmSync,
  statSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { join } from 'node:path';
import { exp, expIn, tempDir } from '../helpers/cli.js';
import { tinyExperiment, trainingBackends } from '../helpers/training.js';
import { readFileBounded, readJson, writeFileAtomic } from '../../src/util/fsx.js';
import { ExpError } from '../../src/errors.js';

let tmp: string;
let runs: string;
let run: string; // the trained run folder: never changed, only copied
let images: string; // its training images (jpg)
const env = (): NodeJS.ProcessEnv => ({ EXP_RUNS_DIR: runs });
const cli = (args: string[]): ReturnType<typeof expIn> => expIn(args, { env: env(), cwd: tmp });

before(async () => {
  tmp = tempDir('exp-model-trust-');
  runs = join(tmp, 'runs');
  const backend = (await trainingBackends())[0]!;
  const file = tinyExperiment(tmp, { backend, epochs: 3, count: 96 });
  const r = await expIn(['run', file, '--workers', '1'], { env: env(), cwd: tmp });
  assert.equal(r.code, 0, r.stderr + r.stdout);
  const sweep = join(runs, 'tiny', readdirSync(join(runs, 'tiny'))[0]!);
  run = join(
    sweep,
    readdirSync(sweep).find((d) => existsSync(join(sweep, d, 'config.yaml')))!,
  );
  images = join(tmp, 'data', 'train-jpg');
  assert.ok(existsSync(join(run, 'checkpoints', 'best', 'state.json')), 'the fixture run saved a best checkpoint');
  assert.ok(existsSync(join(run, 'thresholds.json')));
});

let copies = 0;
/**
 * A copy of the trained run in a sweep folder of its own. Checkpoint data files (tens of MB)
 * are hard links: a probe that damages one replaces the link, never writes through it.
 */
function copyRun(): string {
  const sweep = join(tmp, 'copies', `s${copies++}`);
  const dir = join(sweep, run.split('/').at(-1)!);
  mkdirSync(sweep, { recursive: true });
  cpSync(run, dir, { recursive: true, filter: (src) => !src.endsWith('.bin') });
  for (const which of ['best', 'last']) {
    const from = join(run, 'checkpoints', which);
    if (!existsSync(from)) continue;
    for (const f of readdirSync(from)) if (f.endsWith('.bin')) linkSync(join(from, f), join(dir, 'checkpoints', which, f));
  }
  return dir;
}

const binOf = (dir: string, which: 'best' | 'last'): string => {
  const c = join(dir, 'checkpoints', which);
  return join(
    c,
    readdirSync(c).find((f) => /^weights\.[0-9a-f]{16}\.bin$/.test(f))!,
  );
};
const fbeta = (stdout: string): number => (JSON.parse(stdout) as { fbeta: number }).fbeta;

/** A character device like /dev/null (mknod needs root), or a FIFO where that is not allowed. */
function fakeDevice(path: string): 'device' | 'fifo' {
  if (spawnSync('mknod', [path, 'c', '1', '3']).status === 0) return 'device';
  assert.equal(spawnSync('mkfifo', [path]).status, 0, 'mkfifo');
  return 'fifo';
}
const special = (p: string): boolean => {
  const st = lstatSync(p);
  return st.isCharacterDevice() || st.isFIFO();
};

test('writeFileAtomic refuses a device or FIFO and readJson does not read /dev/zero', () => {
  const dir = tempDir('exp-fsx-trust-');
  const dev = join(dir, 'fakenull');
  fakeDevice(dev);
  assert.throws(
    () => writeFileAtomic(dev, 'x'),
    (e: unknown) => e instanceof ExpError && e.code === 'NOT_A_REGULAR_FILE',
  );
  assert.ok(special(dev), 'the device is still there');
  symlinkSync('/dev/zero', join(dir, 'zero.json'));
  assert.equal(readJson(join(dir, 'zero.json')), undefined);
  assert.throws(
    () => readFileBounded(join(dir, 'zero.json'), 100),
    (e: unknown) => e instanceof ExpError && e.code === 'NOT_A_REGULAR_FILE',
  );
});

test('outputs never replace a device node: predict --out, --probabilities, export keras-h5 and tfjs', async () => {
  const dev = join(tmp, 'fakenull');
  fakeDevice(dev);
  for (const args of [
    ['predict', run, images, '--out', dev],
    ['predict', run, images, '--out', join(tmp, 'sub-dev.csv'), '--probabilities', dev],
    ['export', run, '--format', 'keras-h5', '--out', dev],
    ['export', run, '--format', 'keras-h5', '--out', dev, '--force'],
    ['export', run, '--format', 'tfjs', '--out', dev],
  ]) {
    const r = await cli(args);
    assert.equal(r.code, 2, `${args.join(' ')}: ${r.stderr}`);
    assert.match(r.stderr, /NOT_A_REGULAR_FILE/);
    assert.ok(special(dev), `${args.join(' ')} replaced the device`);
  }
  // Writing to stdout is asked for with --out -.
  const out = await cli(['predict', run, images, '--out', '-']);
  assert.equal(out.code, 0, out.stderr);
  const lines = out.stdout.trim().split('\n');
  assert.equal(lines[0], 'image_name,tags');
  assert.equal(lines.length, 1 + readdirSync(images).filter((f) => f.endsWith('.jpg')).length);
  assert.match(out.stderr, /wrote the submission to stdout/);
});

test('outputs replace only files exp wrote (or with --force): keras-h5 and predict --out / --probabilities', async () => {
  const notes = join(tmp, 'notes.txt');
  writeFileSync(notes, 'my notes\n');
  const refused = await cli(['export', run, '--format', 'keras-h5', '--out', notes]);
  assert.equal(refused.code, 2, refused.stderr);
  assert.match(refused.stderr, /BAD_OPTION_VALUE/);
  assert.match(refused.stderr, /--force/);
  assert.equal(readFileSync(notes, 'utf8'), 'my notes\n');
  const h5 = join(tmp, 'model.h5');
  assert.equal((await cli(['export', run, '--format', 'keras-h5', '--out', h5])).code, 0);
  const again = await cli(['export', run, '--format', 'keras-h5', '--out', h5]);
  assert.equal(again.code, 0, `exp replaces its own export: ${again.stderr}`);
  const forced = await cli(['export', run, '--format', 'keras-h5', '--out', notes, '--force']);
  assert.equal(forced.code, 0, forced.stderr);
  assert.notEqual(readFileSync(notes, 'utf8'), 'my notes\n');

  const mine = join(tmp, 'mine.csv');
  writeFileSync(mine, 'id,value\n1,2\n');
  const sub = join(tmp, 'sub.csv');
  for (const args of [
    ['predict', run, images, '--out', mine],
    ['predict', run, images, '--out', sub, '--probabilities', mine],
  ]) {
    const r = await cli(args);
    assert.equal(r.code, 2, r.stderr);
    assert.match(r.stderr, /BAD_OPTION_VALUE/);
    assert.equal(readFileSync(mine, 'utf8'), 'id,value\n1,2\n');
  }
  const probs = join(tmp, 'probs.csv');
  assert.equal((await cli(['predict', run, images, '--out', sub, '--probabilities', probs])).code, 0);
  const rerun = await cli(['predict', run, images, '--out', sub, '--probabilities', probs]);
  assert.equal(rerun.code, 0, `exp replaces its own submission and probabilities: ${rerun.stderr}`);
});

test('predict --out and --probabilities naming the same file is refused (the probabilities replaced the submission, exit 0)', async () => {
  const same = join(tmp, 'same.csv');
  const r = await cli(['predict', run, images, '--out', same, '--probabilities', './same.csv']);
  assert.equal(r.code, 2, r.stderr);
  assert.match(r.stderr, /same file[\s\S]*BAD_OPTION_VALUE/);
  assert.equal(existsSync(same), false, 'nothing is written');
});

test('a checkpoint data file linked to /dev/zero is a coded error, not memory without end', () => {
  const dir = copyRun();
  const bin = binOf(dir, 'best');
  rmSync(bin);
  symlinkSync('/dev/zero', bin);
  // The real CLI in a child process: a regression fails at the deadline instead of hanging the suite.
  for (const args of [
    ['evaluate', dir],
    ['export', dir, '--format', 'tfjs', '--out', join(tmp, 'zero-tfjs')],
  ]) {
    const r = exp(args, { env: env(), cwd: tmp, timeoutMs: 300_000 });
    assert.equal(r.code, 1, `${args[0]}: ${r.stderr}`);
    assert.match(r.stderr, /CHECKPOINT_CORRUPT/);
    assert.match(r.stderr, /not a regular file/);
  }
});

test('run-folder files linked to /dev/zero are refused: tags.txt, thresholds.json, split.json, point.json', async () => {
  for (const rel of ['tags.txt', 'thresholds.json', 'split/split.json', 'point.json', 'checkpoints/best/state.json', 'checkpoints/best/weights.json']) {
    const dir = copyRun();
    rmSync(join(dir, rel));
    symlinkSync('/dev/zero', join(dir, rel));
    const r = await cli(['evaluate', dir]);
    assert.equal(r.code, 1, `${rel}: ${r.stderr}`);
    assert.match(r.stderr, /NOT_A_REGULAR_FILE|CHECKPOINT_CORRUPT/, rel);
    assert.ok(r.stderr.includes(rel.split('/').at(-1)!), `the error names ${rel}: ${r.stderr}`);
  }
});

test('a damaged best checkpoint is CHECKPOINT_CORRUPT naming the file, not a silent fallback to last; --checkpoint last uses last', async () => {
  const good = await cli(['evaluate', run, '--json']);
  assert.equal(good.code, 0, good.stderr);
  const last = await cli(['evaluate', run, '--json', '--checkpoint', 'last']);
  assert.equal(last.code, 0, last.stderr);

  const truncated = copyRun();
  const manifest = join(truncated, 'checkpoints', 'best', 'weights.json');
  writeFileSync(manifest, readFileSync(manifest, 'utf8').slice(0, 40));
  const noState = copyRun();
  rmSync(join(noState, 'checkpoints', 'best', 'state.json'));
  for (const [dir, file] of [
    [truncated, 'best/weights.json'],
    [noState, 'best/state.json'],
  ] as const) {
    for (const args of [
      ['evaluate', dir],
      ['export', dir, '--format', 'keras-h5', '--out', join(tmp, `damaged-${copies}.h5`)],
      ['predict', dir, images, '--out', join(tmp, `damaged-${copies}.csv`)],
    ]) {
      const r = await cli(args);
      assert.equal(r.code, 1, `${args[0]} ${file}: ${r.stderr}`);
      assert.match(r.stderr, /CHECKPOINT_CORRUPT/);
      assert.ok(r.stderr.includes(file), `names ${file}: ${r.stderr}`);
      assert.match(r.stderr, /--checkpoint last/);
      assert.ok(!existsSync(args.at(-1)!) || args[0] === 'evaluate', 'nothing was written');
    }
    const fallback = await cli(['evaluate', dir, '--json', '--checkpoint', 'last']);
    assert.equal(fallback.code, 0, fallback.stderr);
    assert.equal(fbeta(fallback.stdout), fbeta(last.stdout));
  }
  // A swap of best that stopped between its renames leaves best.old-*: reported, not replaced by last.
  const swapped = copyRun();
  renameSync(join(swapped, 'checkpoints', 'best'), join(swapped, 'checkpoints', 'best.old-123-0'));
  const cut = await cli(['evaluate', swapped]);
  assert.equal(cut.code, 1, cut.stderr);
  assert.match(cut.stderr, /CHECKPOINT_CORRUPT/);
  assert.match(cut.stderr, /best\.old-/);
  const none = copyRun();
  rmSync(join(none, 'checkpoints', 'last'), { recursive: true });
  const r = await cli(['evaluate', none, '--checkpoint', 'last']);
  assert.equal(r.code, 2, r.stderr);
  assert.match(r.stderr, /NO_MODEL/);
});

test('an empty or damaged tags.txt is RUN_FILE_CORRUPT naming it (evaluate, predict, export, ensemble), not an internal error', async () => {
  for (const text of ['', '\n\n', 'clear\nclear\n']) {
    const dir = copyRun();
    writeFileSync(join(dir, 'tags.txt'), text);
    for (const args of [
      ['evaluate', dir],
      ['predict', dir, images, '--out', join(tmp, 'tags.csv')],
      ['export', dir, '--format', 'tfjs', '--out', join(tmp, 'tags-tfjs')],
      ['ensemble', copyRun(), dir, '--out', join(tmp, 'tags-ens')],
    ]) {
      const r = await cli(args);
      assert.equal(r.code, 1, `${args[0]} ${JSON.stringify(text)}: ${r.stderr}`);
      assert.match(r.stderr, /RUN_FILE_CORRUPT/);
      assert.match(r.stderr, /tags\.txt/);
      assert.doesNotMatch(r.stderr, /internal error/);
    }
  }
});

test('a damaged ensemble.json is RUN_FILE_CORRUPT naming it (evaluate, predict, export)', async () => {
  for (const text of ['', '{"members": ', JSON.stringify({ members: 'x', tags: [], thresholds: [] })]) {
    const ens = join(tmp, `ens-${copies++}`);
    mkdirSync(ens);
    writeFileSync(join(ens, 'ensemble.json'), text);
    for (const args of [
      ['evaluate', ens],
      ['predict', ens, images, '--out', join(tmp, 'ens.csv')],
      ['export', ens, '--format', 'tfjs', '--out', join(tmp, 'ens-tfjs')],
    ]) {
      const r = await cli(args);
      assert.equal(r.code, 1, `${args[0]} ${JSON.stringify(text)}: ${r.stderr}`);
      assert.match(r.stderr, /RUN_FILE_CORRUPT/);
      assert.match(r.stderr, /ensemble\.json/);
    }
  }
});

test('damaged point.json and split.json are RUN_FILE_CORRUPT naming them, and are left as they are', async () => {
  for (const rel of ['point.json', 'split/split.json']) {
    const dir = copyRun();
    writeFileSync(join(dir, rel), '{"uid": ');
    const r = await cli(['evaluate', dir]);
    assert.equal(r.code, 1, `${rel}: ${r.stderr}`);
    assert.match(r.stderr, /RUN_FILE_CORRUPT/);
    assert.ok(r.stderr.includes(rel.split('/').at(-1)!), r.stderr);
    assert.equal(readFileSync(join(dir, rel), 'utf8'), '{"uid": ', `${rel} was not replaced`);
  }
});

test('a garbage thresholds.json is RUN_FILE_CORRUPT naming it, not a silent 0.5; --thresholds 0.5 scores without it', async () => {
  const flat = await cli(['evaluate', run, '--json', '--thresholds', '0.5']);
  assert.equal(flat.code, 0, flat.stderr);
  const tags = readFileSync(join(run, 'tags.txt'), 'utf8').trim().split('\n');
  for (const text of [
    'garbage',
    '{}',
    JSON.stringify({ version: 1, tags: ['other'], thresholds: [0.3] }),
    JSON.stringify({ tags, thresholds: tags.map(() => 7) }),
  ]) {
    const dir = copyRun();
    writeFileSync(join(dir, 'thresholds.json'), text);
    for (const args of [
      ['evaluate', dir],
      ['predict', dir, images, '--out', join(tmp, 'th.csv')],
    ]) {
      const r = await cli(args);
      assert.equal(r.code, 1, `${args[0]} ${text}: ${r.stderr}`);
      assert.match(r.stderr, /RUN_FILE_CORRUPT/);
      assert.match(r.stderr, /thresholds\.json/);
      assert.match(r.stderr, /--thresholds 0\.5/);
    }
    const ok = await cli(['evaluate', dir, '--json', '--thresholds', '0.5']);
    assert.equal(ok.code, 0, ok.stderr);
    assert.equal(fbeta(ok.stdout), fbeta(flat.stdout));
  }
  // A run with no thresholds.json at all scores at metrics.threshold, and says so.
  const none = copyRun();
  rmSync(join(none, 'thresholds.json'));
  const r = await cli(['evaluate', none]);
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /the run has no thresholds\.json/);
});

test('exp predict --ext: an empty folder names the option, and --ext png predicts the png images', async () => {
  const empty = join(tmp, 'emptydir');
  mkdirSync(empty);
  const r = await cli(['predict', run, empty, '--out', join(tmp, 'empty.csv')]);
  assert.equal(r.code, 2, r.stderr);
  assert.match(r.stderr, /EMPTY_DATASET/);
  assert.match(r.stderr, /--ext/);
  const pngs = join(tmp, 'pngs');
  mkdirSync(pngs);
  // sharp decodes by content, so jpg bytes under a .png name stand in for png images here.
  for (const f of readdirSync(images).slice(0, 3)) copyFileSync(join(images, f), join(pngs, f.replace(/\.jpg$/, '.png')));
  const out = join(tmp, 'png.csv');
  const p = await cli(['predict', run, pngs, '--out', out, '--ext', 'png']);
  assert.equal(p.code, 0, p.stderr);
  assert.equal(readFileSync(out, 'utf8').trim().split('\n').length, 4);
  assert.ok(statSync(out).isFile());
  const bad = await cli(['predict', run, pngs, '--out', out, '--ext', '../x']);
  assert.equal(bad.code, 2);
  assert.match(bad.stderr, /BAD_OPTION_VALUE/);
});
