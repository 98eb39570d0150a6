/**
 * Training under faults, with real training: a damaged checkpoint is refused (checksums) and
 * training falls back to the other one, or starts over; a crash between a checkpoint swap's
 * renames is put right; a full disk is a coded error naming the file; a second `exp run`
 * while the first trains says "already running", not "failed"; a child killed by SIGKILL
 * is recorded with the signal; a dead run shows as interrupted, not running.
 */
import { before, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { cpSync, existsSync, readdirSync, readFileSync, renameSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { BIN, expIn, tempDir } from '../helpers/cli.js';
import { tinyExperiment, trainingBackends } from '../helpers/training.js';

let tmp: string;
let file: string;
let trained: string;

const json = <T>(p: string): T => JSON.parse(readFileSync(p, 'utf8')) as T;
const record = (dir: string): { status: string; reason?: string; pid?: number; attempts: number } => json(join(dir, 'run.json'));
const log = (dir: string): string => readFileSync(join(dir, 'train.log'), 'utf8');
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

before(async () => {
  tmp = tempDir('exp-rel-train-');
  const backend = (await trainingBackends())[0]!;
  file = tinyExperiment(tmp, { backend, name: 'rt', epochs: 3, extra: 'checkpoint: { monitor: val_fbeta }' });
  const r = await expIn(['run', file, '--runs-dir', join(tmp, 'runs'), '--sweep', 'base'], { cwd: tmp });
  assert.equal(r.code, 0, r.stderr);
  const sweep = join(tmp, 'runs', 'rt', 'base');
  trained = join(
    sweep,
    readdirSync(sweep).find((d) => !d.includes('.'))!,
  );
});

/** A copy of the trained run as if it had been stopped after its last checkpoint. */
function copyOfTrained(name: string): string {
  const dir = join(tmp, 'copies', name, 'rt', 'base', 'run');
  cpSync(join(tmp, 'runs', 'rt', 'base'), join(tmp, 'copies', name, 'rt', 'base'), { recursive: true });
  renameSync(join(tmp, 'copies', name, 'rt', 'base', trained.split('/').at(-1)!), dir);
  for (const f of readdirSync(dir)) if (f.startsWith('.lock')) rmSync(join(dir, f));
  writeFileSync(join(dir, 'run.json'), JSON.stringify({ ...record(dir), status: 'killed' }));
  return dir;
}

const dataFile = (ckpt: string, prefix: string): string =>
  join(
    ckpt,
    readdirSync(ckpt).find((f) => f.startsWith(`${prefix}.`) && f.endsWith('.bin'))!,
  );
function flipBytes(path: string): void {
  const b = readFileSync(path);
  for (let i = 0; i < 64; i++) b[(i * 97) % b.length] ^= 0xff; // same size, other bytes
  writeFileSync(path, b);
}

test(
  'regression: a same-size damage to checkpoints/last is found by its checksum (it loaded silently); training falls back to best, or starts over',
  { timeout: 300_000 },
  async () => {
    const one = copyOfTrained('last-damaged');
    flipBytes(dataFile(join(one, 'checkpoints', 'last'), 'weights'));
    const r = await expIn(['train', one], { cwd: tmp });
    assert.equal(r.code, 0, r.stderr);
    assert.match(log(one), /warning: checkpoint .*checkpoints\/last is not usable \(.*does not match the SHA-256 its manifest recorded/);
    assert.match(log(one), /resuming from checkpoints\/best after epoch \d/);
    assert.equal(record(one).status, 'completed');

    const both = copyOfTrained('both-damaged');
    flipBytes(dataFile(join(both, 'checkpoints', 'last'), 'optimizer'));
    writeFileSync(join(both, 'checkpoints', 'best', 'state.json'), '{"version": 2, "epo'); // truncated
    const r2 = await expIn(['train', both], { cwd: tmp });
    assert.equal(r2.code, 0, r2.stderr);
    assert.match(log(both), /state\.json is missing, truncated or not a checkpoint state/);
    assert.match(log(both), /no usable checkpoint: training starts over/);
    assert.equal(readFileSync(join(both, 'metrics.jsonl'), 'utf8').trim().split('\n').length, 3, 'trained again from epoch 1');
  },
);

test(
  'regression: a crash between the two renames of a checkpoint swap (last.old-* left, last missing) is put right on resume',
  { timeout: 300_000 },
  async () => {
    const dir = copyOfTrained('swap');
    const ck = join(dir, 'checkpoints');
    renameSync(join(ck, 'last'), join(ck, 'last.old-123-4'));
    const r = await expIn(['train', dir], { cwd: tmp });
    assert.equal(r.code, 0, r.stderr);
    assert.match(log(dir), /resuming from checkpoints\/last after epoch 3/);
    assert.ok(existsSync(join(ck, 'last', 'state.json')));
    assert.deepEqual(
      readdirSync(ck).filter((f) => f.includes('.old-') || f.includes('.tmp-')),
      [],
    );
  },
);

test('regression: a full disk is a coded error that names the file and the space left (it was an internal error)', { timeout: 120_000 }, async () => {
  const planned = await expIn(['run', file, '--runs-dir', join(tmp, 'runs-full'), '--dry-run'], { cwd: tmp });
  assert.equal(planned.code, 0);
  const sweep = join(tmp, 'runs-full', 'rt');
  const dir = join(
    sweep,
    readdirSync(sweep)[0]!,
    readdirSync(join(sweep, readdirSync(sweep)[0]!)).find((d) => !d.includes('.'))!,
  );
  symlinkSync('/dev/full', join(dir, 'train.log')); // every write to it fails with ENOSPC
  const r = await expIn(['train', dir], { cwd: tmp });
  assert.equal(r.code, 1, r.stderr);
  assert.match(r.stderr, /no space left on the device while writing .*train\.log.*\[DISK_FULL\]/s);
  assert.match(r.stderr, /fix: free some disk space/);
  assert.doesNotMatch(r.stderr, /internal error/);
  assert.equal(record(dir).status, 'failed');
  assert.match(record(dir).reason!, /no space left/);
});

test(
  'regression: a second exp run while the first trains says "already running", not "failed"; a killed child is recorded with its signal; a dead run shows as interrupted',
  { timeout: 300_000 },
  async () => {
    const long = tinyExperiment(tmp, { backend: (await trainingBackends())[0]!, name: 'busy', epochs: 40 });
    const runs = join(tmp, 'runs-busy');
    const first = spawn(process.execPath, [BIN, 'run', long, '--runs-dir', runs], { cwd: tmp, stdio: 'ignore' });
    const sweep = (): string => join(runs, 'busy', readdirSync(join(runs, 'busy'))[0]!);
    let dir = '';
    for (let i = 0; i < 300 && !dir; i++) {
      await sleep(200);
      if (!existsSync(join(runs, 'busy'))) continue;
      const d = readdirSync(sweep()).find((n) => !n.includes('.'));
      if (d && existsSync(join(sweep(), d, 'run.json')) && record(join(sweep(), d)).status === 'running' && existsSync(join(sweep(), d, 'metrics.jsonl')))
        dir = join(sweep(), d);
    }
    assert.ok(dir, 'the first run started');
    const second = await expIn(['run', long, '--runs-dir', runs], { cwd: tmp });
    assert.equal(second.code, 0, second.stdout + second.stderr);
    assert.match(second.stdout, /busy +.*already running \(process \d+\)/);
    assert.equal(record(dir).status, 'running', 'the first is not disturbed');

    process.kill(record(dir).pid!, 'SIGKILL'); // the OOM killer, say
    await new Promise((r) => first.once('exit', r));
    const rec = record(dir);
    assert.equal(rec.status, 'failed');
    assert.match(rec.reason!, /killed by SIGKILL \(out of memory\? nothing asked it to stop/);

    // Without a launcher to record it, a killed run still says running: readers show it as interrupted.
    writeFileSync(join(dir, 'run.json'), JSON.stringify({ ...rec, status: 'running' }));
    const status = await expIn(['status', dir], { cwd: tmp });
    assert.match(status.stdout, /interrupted/);
    const runsList = await expIn(['runs', runs], { cwd: tmp });
    assert.match(runsList.stdout, / interrupted /);
  },
);
