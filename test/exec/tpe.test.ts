/**
 * TPE live (sweep.tpe), with real training on the synthetic data at 32 px: the study proposes
 * each point as a worker frees, journals it (study.jsonl) before its folder is written, and a
 * run of the same file after the submitter was SIGKILLed continues the study: no proposal
 * repeated or lost, and with one worker the sequence of proposals equals an uninterrupted run's.
 */
import { before, test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { spawn, type ChildProcess } from 'node:child_process';
import { startRedis } from '../helpers/redis-server.js';
import { BIN, expIn, tempDir } from '../helpers/cli.js';
import { tinyExperiment, trainingBackends } from '../helpers/training.js';
import { runFolderBusy } from '../../src/store/run.js';

let tmp: string;
let backend: string;

before(async () => {
  tmp = tempDir('exp-tpe-');
  backend = (await trainingBackends())[0]!;
});

interface Entry {
  type: string;
  index: number;
  params: Record<string, unknown>;
  sampler: string;
  dir: string;
  known: { index: number; state: string }[];
  duplicate_of?: number;
}
const journal = (sweep: string): Entry[] => {
  const p = join(sweep, 'study.jsonl');
  if (!existsSync(p)) return [];
  return readFileSync(p, 'utf8')
    .split('\n')
    .filter((l) => l.trim())
    .flatMap((l) => {
      try {
        return [JSON.parse(l) as Entry];
      } catch {
        return []; // a line being written
      }
    });
};
const proposals = (sweep: string): Entry[] => journal(sweep).filter((e) => e.type === 'proposal');
const status = (dir: string): string => (JSON.parse(readFileSync(join(dir, 'run.json'), 'utf8')) as { status: string }).status;
const sweepOf = (runs: string, name: string): string => join(runs, name, readdirSync(join(runs, name))[0]!);

const COUNT = 4;
const studyFile = (name: string): string =>
  tinyExperiment(tmp, {
    backend,
    name,
    epochs: 2,
    extra: [
      'sweep:',
      '  tpe:',
      `    count: ${COUNT}`,
      '    startup: 2',
      '    seed: 3',
      '    params:',
      '      training.learning_rate: { distribution: log_uniform, low: 0.0001, high: 0.01 }',
      '      model.head.units: { distribution: int_uniform, low: 8, high: 64 }',
    ].join('\n'),
  });

/** Polls for an outcome with a generous deadline (the machine is shared). */
async function until<T>(what: string, f: () => T | undefined, ms = 300_000): Promise<T> {
  const deadline = Date.now() + ms;
  for (;;) {
    const v = f();
    if (v !== undefined && v !== false) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

test(
  'a TPE sweep with 2 local workers finishes count points, each journaled with what was known; a second submitter adds nothing',
  { timeout: 900_000 },
  async () => {
    const file = studyFile('tpe2');
    const runs = join(tmp, 'runs2');
    const first = expIn(['run', file, '--runs-dir', runs, '--workers', '2'], { cwd: tmp });
    const sweep = await until('the study journal', () =>
      existsSync(join(runs, 'tpe2')) && proposals(sweepOf(runs, 'tpe2')).length > 0 ? sweepOf(runs, 'tpe2') : undefined,
    );
    const second = await expIn(['run', file, '--runs-dir', runs, '--workers', '2'], { cwd: tmp });
    const r = await first;
    assert.equal(r.code, 0, r.stdout + r.stderr);
    assert.equal(second.code, 1, second.stdout + second.stderr);
    assert.match(second.stderr, /\[LOCKED\]/);
    const ps = proposals(sweep);
    assert.equal(ps.length, COUNT, 'count proposals, none made by the second submitter');
    assert.deepEqual(
      ps.map((p) => p.index),
      [0, 1, 2, 3],
    );
    // A start-up point while fewer than `startup` points had ended when it was made (with 2 workers the third may be one), TPE after.
    const endedWhen = (p: Entry): number => p.known.filter((k) => k.state === 'complete' || k.state === 'pruned').length;
    for (const p of ps) assert.equal(p.sampler, endedWhen(p) >= 2 ? 'tpe' : 'random', `proposal ${p.index}`);
    assert.equal(ps.at(-1)!.sampler, 'tpe');
    // Each proposal knew every earlier one (finished or still training: TPE's constant liar).
    for (const p of ps)
      assert.deepEqual(
        p.known.map((k) => k.index),
        Array.from({ length: p.index }, (_, i) => i),
      );
    // With 2 workers the third proposal is made when the first point ends, the second still training.
    assert.ok(ps[2]!.known.some((k) => k.state === 'complete'));
    const dirs = ps.filter((p) => p.duplicate_of === undefined).map((p) => join(sweep, p.dir));
    for (const d of dirs) assert.equal(status(d), 'completed', d);
    const index = JSON.parse(readFileSync(join(sweep, 'index.json'), 'utf8')) as { points: { dir: string }[] };
    assert.deepEqual(
      index.points.map((p) => p.dir).sort(),
      ps
        .filter((p) => p.duplicate_of === undefined)
        .map((p) => p.dir)
        .sort(),
    );
    // exp why shows the proposal's inputs: the known results and TPE's split.
    const why = await expIn(['why', join(sweep, ps.at(-1)!.dir)], { cwd: tmp });
    assert.equal(why.code, 0, why.stderr);
    assert.match(why.stdout, /proposal: proposal 4 \(TPE\): 3 earlier points known, \d ended; good \(l\(x\)\): #\d final_val_fbeta [\d.]+/);
    const whyJson = JSON.parse((await expIn(['why', join(sweep, ps[0]!.dir), '--json'], { cwd: tmp })).stdout) as {
      decisions: { kind: string; text: string }[];
    };
    assert.deepEqual(
      whyJson.decisions.map((d) => d.kind),
      ['proposal', 'ended'],
    );
    assert.match(whyJson.decisions[0]!.text, /random start-up point/);
    // exp plan shows the start-up points and says the rest is adaptive.
    const plan = await expIn(['plan', file], { cwd: tmp });
    assert.equal(plan.code, 0, plan.stderr);
    assert.match(plan.stdout, /2 random start-up points.*adaptive/s);
  },
);

test(
  "SIGKILL of a TPE submitter mid-study: run again continues the study, and with one worker the proposals equal an uninterrupted run's",
  { timeout: 1_200_000 },
  async () => {
    const file = studyFile('tpekill');
    const whole = join(tmp, 'whole');
    const r0 = await expIn(['run', file, '--runs-dir', whole], { cwd: tmp });
    assert.equal(r0.code, 0, r0.stdout + r0.stderr);
    const reference = proposals(sweepOf(whole, 'tpekill'));
    assert.equal(reference.length, COUNT);

    const runs = join(tmp, 'killed');
    const child = spawn(process.execPath, [BIN, 'run', file, '--runs-dir', runs], { cwd: tmp, stdio: 'ignore' });
    const exited = new Promise((r) => child.once('exit', r));
    // Killed while the third point (the first TPE proposal) trains: proposals made, points ended, one mid-way.
    const sweep = await until('the third proposal', () =>
      existsSync(join(runs, 'tpekill')) && proposals(sweepOf(runs, 'tpekill')).length >= 3 ? sweepOf(runs, 'tpekill') : undefined,
    );
    // Only once its training holds the folder and has an epoch: killed earlier, its orphaned child could take the folder after
    // the rerun started it, and the rerun would see it busy (another worker, for TPE) instead of resuming it.
    const third = join(sweep, proposals(sweep)[2]!.dir);
    await until('the third point mid-way', () => runFolderBusy(third).busy && existsSync(join(third, 'metrics.jsonl')));
    child.kill('SIGKILL');
    await exited;
    const before = proposals(sweep);
    assert.ok(before.length < COUNT, 'killed before the study ended');
    // Its orphaned `exp train` child stops at its next batch once its launcher's channel closes.
    await until('the orphaned training to stop', () => before.every((p) => !runFolderBusy(join(sweep, p.dir)).busy));
    const r = await expIn(['run', file, '--runs-dir', runs], { cwd: tmp });
    assert.equal(r.code, 0, r.stdout + r.stderr);
    assert.match(r.stdout, /proposed so far, continuing/);
    const after = proposals(sweep);
    assert.deepEqual(
      after.slice(0, before.length).map((p) => p.params),
      before.map((p) => p.params),
      'the journal kept every proposal made before the kill',
    );
    assert.deepEqual(
      after.map((p) => p.params),
      reference.map((p) => p.params),
      'the same sequence of proposals as the uninterrupted run',
    );
    for (const p of after) assert.equal(status(join(sweep, p.dir)), 'completed', p.dir);
  },
);

test(
  "a TPE sweep on the queue (real Redis, 2 exp workers with their own runs folders) proposes from the jobs' results; a second submitter adds nothing",
  { timeout: 900_000 },
  async () => {
    const redis = await startRedis();
    const workers: ChildProcess[] = [];
    try {
      const file = studyFile('tpeq');
      const logs: string[] = ['', ''];
      for (const [i, name] of ['qa', 'qb'].entries()) {
        const child = spawn(process.execPath, [BIN, 'worker', '--queue', redis.url, '--runs-dir', join(tmp, name), '--name', name], {
          cwd: tmp,
          env: { ...process.env, MLFLOW_TRACKING_URI: '' },
          stdio: ['ignore', 'pipe', 'pipe'],
        });
        child.stdout!.on('data', (d: Buffer) => (logs[i] += d));
        child.stderr!.on('data', (d: Buffer) => (logs[i] += d));
        workers.push(child);
      }
      const runs = join(tmp, 'sub');
      const first = expIn(['run', file, '--queue', redis.url, '--runs-dir', runs], { cwd: tmp, env: { ...process.env, MLFLOW_TRACKING_URI: '' } });
      const sweep = await until('the study journal', () =>
        existsSync(join(runs, 'tpeq')) && proposals(sweepOf(runs, 'tpeq')).length > 0 ? sweepOf(runs, 'tpeq') : undefined,
      );
      const second = await expIn(['run', file, '--queue', redis.url, '--runs-dir', runs], { cwd: tmp, env: { ...process.env, MLFLOW_TRACKING_URI: '' } });
      assert.equal(second.code, 1, second.stdout + second.stderr);
      assert.match(second.stderr, /\[LOCKED\]/);
      const r = await first;
      assert.equal(r.code, 0, r.stdout + r.stderr + logs.join('\n----\n'));
      const ps = proposals(sweep);
      assert.equal(ps.length, COUNT);
      assert.equal(ps.at(-1)!.sampler, 'tpe');
      // TPE proposed from results the workers returned: the last proposal knew completed points with their values.
      const done = ps.at(-1)!.known.filter((k) => k.state === 'complete') as { value?: number }[];
      assert.ok(done.length >= 2 && done.every((k) => Number.isFinite(k.value)), JSON.stringify(ps.at(-1)!.known));
      // Every proposal was trained once, by one of the workers, in its own runs folder.
      const trained = ['qa', 'qb'].flatMap((w) => {
        const exp = join(tmp, w, 'tpeq');
        return existsSync(exp)
          ? readdirSync(join(exp, readdirSync(exp)[0]!), { withFileTypes: true })
              .filter((d) => d.isDirectory())
              .map((d) => d.name)
          : [];
      });
      const live = ps.filter((p) => p.duplicate_of === undefined).map((p) => p.dir);
      assert.deepEqual([...trained].sort(), [...live].sort(), logs.join('\n----\n'));
    } finally {
      for (const w of workers) if (w.exitCode === null) w.kill('SIGKILL');
      await redis.stop();
    }
  },
);
