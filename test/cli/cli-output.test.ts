// Everyday CLI output: what a pipe receives, what an unknown option says, which columns `exp runs` shows.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { BIN, ROOT, exp, tempDir } from '../helpers/cli.js';

/** A reader that takes what the pipe gives a little at a time, pausing between reads, into a file. */
const SLOW_READER = `
import { createWriteStream } from 'node:fs';
const out = createWriteStream(process.argv[2]);
let ended = false;
process.stdin.on('readable', () => {});
process.stdin.once('end', () => { ended = true; out.end(); });
const take = () => {
  const chunk = process.stdin.read(4096);
  if (chunk !== null) out.write(chunk);
  if (!ended) setTimeout(take, 2);
};
setTimeout(take, 200);
`;

/** Runs `sh -c SCRIPT` in `cwd` and resolves with its exit status and what it printed. */
function sh(script: string, cwd: string): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn('sh', ['-c', script], { cwd, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, stdout, stderr }));
  });
}

/** A sweep file whose plan is several MB of JSON (a 1000-point grid). */
function bigSweep(dir: string): string {
  const file = join(dir, 'big.yaml');
  writeFileSync(
    file,
    [
      `extends: ${join(ROOT, 'experiments', 'vgg16-block5.yaml')}`,
      'name: big',
      'sweep:',
      '  grid:',
      '    training.learning_rate: [0.1, 0.01, 0.001, 0.0001, 0.00001, 0.2, 0.02, 0.002, 0.0002, 0.00002]',
      '    training.batch_size: [8, 16, 32, 64, 128]',
      '    training.epochs: [1, 2, 3, 4]',
      '    training.seed: [1, 2, 3, 4, 5]',
      '  max_runs: 1000',
      '',
    ].join('\n'),
  );
  return file;
}

const q = (s: string): string => `'${s.replace(/'/g, `'\\''`)}'`;

test('exp plan --json piped to a slow reader arrives whole (it was cut at 64 KiB: process.exit dropped what the pipe had not taken)', async () => {
  const dir = tempDir();
  bigSweep(dir);
  writeFileSync(join(dir, 'reader.mjs'), SLOW_READER);
  const node = q(process.execPath);
  // Into a file, the document is whole (a file is written synchronously): the reference.
  const toFile = await sh(`${node} ${q(BIN)} plan big.yaml --json > whole.json`, dir);
  assert.equal(toFile.code, 0, toFile.stderr);
  const whole = readFileSync(join(dir, 'whole.json'), 'utf8');
  assert.ok(whole.length > 2_000_000, `plan is ${whole.length} bytes`);
  const r = await sh(`{ ${node} ${q(BIN)} plan big.yaml --json; echo $? > rc; } | ${node} reader.mjs got.json`, dir);
  assert.equal(r.code, 0, r.stderr);
  assert.equal(readFileSync(join(dir, 'rc'), 'utf8').trim(), '0');
  const got = readFileSync(join(dir, 'got.json'), 'utf8');
  assert.equal(got.length, whole.length);
  assert.equal(got, whole);
  assert.equal((JSON.parse(got) as unknown[]).length, 1000);
});

test('a long report on stderr piped to a slow reader arrives whole', async () => {
  const dir = tempDir();
  const keys = Array.from({ length: 5000 }, (_, i) => `  unknown_key_${i}: ${i}`);
  writeFileSync(join(dir, 'bad.yaml'), ['name: bad', 'data:', '  path: x', ...keys, ''].join('\n'));
  writeFileSync(join(dir, 'reader.mjs'), SLOW_READER);
  const node = q(process.execPath);
  const toFile = await sh(`${node} ${q(BIN)} validate bad.yaml 2> whole.txt`, dir);
  assert.equal(toFile.code, 2);
  const whole = readFileSync(join(dir, 'whole.txt'), 'utf8');
  assert.ok(whole.length > 1_000_000, `report is ${whole.length} bytes`);
  const r = await sh(`{ ${node} ${q(BIN)} validate bad.yaml 2>&1 >/dev/null; echo $? > rc; } | ${node} reader.mjs got.txt`, dir);
  assert.equal(r.code, 0, r.stderr);
  assert.equal(readFileSync(join(dir, 'rc'), 'utf8').trim(), '2');
  const got = readFileSync(join(dir, 'got.txt'), 'utf8');
  assert.equal(got, whole);
  assert.match(got, /\n5000 problems found\.\n$/);
});

test('exp plan --json | head -c 10: exp exits 0 without an error message when the reader leaves early', async () => {
  const dir = tempDir();
  bigSweep(dir);
  const r = await sh(`{ ${q(process.execPath)} ${q(BIN)} plan big.yaml --json 2> err.txt; echo $? > rc; } | head -c 10`, dir);
  assert.equal(r.code, 0, r.stderr);
  assert.equal(r.stdout.length, 10);
  assert.equal(readFileSync(join(dir, 'rc'), 'utf8').trim(), '0');
  assert.equal(readFileSync(join(dir, 'err.txt'), 'utf8'), '');
});

test('exp run FILE --epochs 2 says to use --set training.epochs=2 (an unknown option that names a config setting)', () => {
  const dir = tempDir();
  const file = bigSweep(dir);
  const cases: [string[], RegExp][] = [
    [['--epochs', '2'], /--set training\.epochs=2\b/],
    [['--lr=0.01'], /--set training\.learning_rate=0\.01\b/],
    [['--learning-rate', '0.1'], /--set training\.learning_rate=0\.1\b/],
    [['--batch-size', '8'], /--set training\.batch_size=8\b/],
    [['--Batch_Size', '8'], /--set training\.batch_size=8\b/],
    [['--seed', '3'], /--set training\.seed=3 \(or --set data\.split\.seed=\.\.\., --set data\.synth\.seed=\.\.\.\)/],
    [['--tta'], /--set evaluation\.tta=true\b/],
    [['--training.epochs', '3'], /--set training\.epochs=3\b/],
  ];
  for (const [args, fix] of cases) {
    const r = exp(['run', file, ...args], { cwd: dir });
    assert.equal(r.code, 2, args.join(' '));
    assert.match(r.stderr, /unknown option '--[\w.-]+'; [\w.]+ is a setting of the config, not an option/, args.join(' '));
    assert.match(r.stderr, fix, args.join(' '));
    assert.match(r.stderr, /\[UNKNOWN_OPTION\]\n$/);
  }
  // Not a setting: the usual answer, with its did-you-mean.
  const typo = exp(['run', file, '--dry-rn'], { cwd: dir });
  assert.equal(typo.code, 2);
  assert.match(typo.stderr, /unknown option '--dry-rn'; did you mean '--dry-run'\?/);
  assert.doesNotMatch(typo.stderr, /--set/);
  // A command without --set does not suggest it.
  const runs = exp(['runs', dir, '--epochs', '2'], { cwd: dir });
  assert.equal(runs.code, 2);
  assert.match(runs.stderr, /unknown option '--epochs'.*\[UNKNOWN_OPTION\]/s);
  assert.doesNotMatch(runs.stderr, /--set/);
});
