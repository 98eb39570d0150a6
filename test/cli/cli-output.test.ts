// Everyday CLI output: what a pipe receives, what an unknown option says, which columns `exp runs` shows.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { BIN, ROOT, exp, tempDir } from '../helpers/cli.js';
import { planExperiment } from '../../src/sweep/plan.js';
import { writePlan } from '../../src/store/sweep.js';

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

test('exp plan --json > /dev/full fails with DISK_FULL instead of exiting 0 with the output lost', { skip: !existsSync('/dev/full') }, async () => {
  const dir = tempDir();
  bigSweep(dir);
  const r = await sh(`${q(process.execPath)} ${q(BIN)} plan big.yaml --json > /dev/full`, dir);
  assert.equal(r.code, 1, r.stderr);
  assert.match(r.stderr, /could not be written to stdout[\s\S]*\[DISK_FULL\]/);
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

/** A planned 2x2 sweep whose points have finished (run.json and summary.json written as the trainer writes them). */
function finishedSweep(dir: string): string {
  const file = join(dir, 'cols.yaml');
  writeFileSync(file, 'name: cols\ndata: { path: ./data }\nsweep: { grid: { training.learning_rate: [0.001, 0.0005], model.head.units: [16, 32] } }\n');
  const r = planExperiment(file);
  assert.ok(r.plan, JSON.stringify(r.problems));
  const { dir: sweepDir, index } = writePlan(join(dir, 'runs'), r.plan);
  index.points.forEach((p, i) => {
    const m = { val_loss: 0.2 + i / 100, val_fbeta: 0.6 + i / 100, val_micro_fbeta: 0.7 + i / 100 };
    const d = join(sweepDir, p.dir);
    writeFileSync(join(d, 'run.json'), JSON.stringify({ key: p.key, status: 'completed', started: '2026-01-01T00:00:00Z', ended: '2026-01-01T00:01:00Z' }));
    const best = { epoch: 2, metrics: { loss: 0.1, fbeta: 0.8, ...m } };
    const summary = {
      status: 'completed',
      backend: 'wasm',
      epochs_completed: 2,
      epochs_planned: 2,
      monitor: 'val_loss',
      mode: 'min',
      best,
      final: m,
      duration_s: 60,
    };
    writeFileSync(join(d, 'summary.json'), JSON.stringify({ ...summary, baseline: { constant_top_k: 2, val_fbeta: 0.42 } }));
  });
  return sweepDir;
}

const rowsOf = (stdout: string): string[][] =>
  stdout
    .trimEnd()
    .split('\n')
    .filter((l) => !/^-[- ]*$/.test(l))
    .map((l) => l.trim().split(/\s{2,}/));

test('exp runs --columns A,B shows exactly those columns in that order (it added them to the standard ones), by the names users type', () => {
  const dir = tempDir();
  const sweep = finishedSweep(dir);
  const std = exp(['runs', sweep]);
  assert.equal(std.code, 0, std.stderr);
  assert.deepEqual(rowsOf(std.stdout)[0], [
    'experiment',
    'sweep',
    'run',
    'key',
    'status',
    'epochs',
    'best epoch',
    'monitored',
    'val_loss',
    'val_fbeta',
    'backend',
    'duration',
  ]);

  const r = exp(['runs', sweep, '--columns', 'name,status,val_fbeta,learning_rate,model.head.units,val_micro_fbeta']);
  assert.equal(r.code, 0, r.stderr);
  const rows = rowsOf(r.stdout);
  assert.deepEqual(rows[0], ['run', 'status', 'val_fbeta', 'learning_rate', 'model.head.units', 'val_micro_fbeta']);
  assert.equal(rows.length, 5);
  assert.deepEqual(
    rows.slice(1).map((c) => c.slice(1)),
    [
      ['completed', '0.6', '0.001', '16', '0.7'],
      ['completed', '0.61', '0.001', '32', '0.71'],
      ['completed', '0.62', '0.0005', '16', '0.72'],
      ['completed', '0.63', '0.0005', '32', '0.73'],
    ],
  );
  // MLflow's names choose the same columns; the standard headers answer to their spelling with '_'.
  const mlflow = exp(['runs', sweep, '--columns', 'attributes.run_name,params.training.learning_rate,metrics.val_fbeta,best_epoch,Duration']);
  assert.equal(mlflow.code, 0, mlflow.stderr);
  assert.deepEqual(rowsOf(mlflow.stdout)[0], ['run', 'params.training.learning_rate', 'metrics.val_fbeta', 'best epoch', 'duration']);
  assert.deepEqual(rowsOf(mlflow.stdout)[1]!.slice(1), ['0.001', '0.6', '2', '1m00s']);
  // --json gives the chosen columns by their headers.
  const json = exp(['runs', sweep, '--columns', 'name,learning_rate', '--json']);
  assert.equal(json.code, 0, json.stderr);
  const first = (JSON.parse(json.stdout) as { name: string; columns: Record<string, unknown> }[])[0]!;
  assert.deepEqual(first.columns, { run: first.name, learning_rate: 0.001 });
});

test('exp runs --columns with a name that is no column: a coded error with a did-you-mean and the valid spellings', () => {
  const dir = tempDir();
  const sweep = finishedSweep(dir);
  const cases: [string, RegExp][] = [
    ['nme', /--columns: no column 'nme'; did you mean 'name'\?/],
    ['stauts', /did you mean 'status'\?/],
    ['params.training.lr', /no column 'params\.training\.lr'; did you mean 'training\.learning_rate'\?/],
    ['metrics.val_fbta', /no run has a metric 'val_fbta'; did you mean 'val_fbeta'\?/],
    ['seed', /'seed' names 3 settings \(data\.split\.seed, data\.synth\.seed, training\.seed\); give the whole path/],
    ['attributes.colour', /'attributes\.colour' is not an attribute of a run/],
  ];
  for (const [name, message] of cases) {
    const r = exp(['runs', sweep, '--columns', `run,${name}`]);
    assert.equal(r.code, 2, name);
    assert.equal(r.stdout, '', name);
    assert.match(r.stderr, message, name);
    assert.match(
      r.stderr,
      /fix: name columns as the table's headers do \(experiment, sweep, run, key, status, epochs, best_epoch, .*metrics\.X, params\.X, tags\.X, attributes\.X \[BAD_OPTION_VALUE\]/,
      name,
    );
  }
});
