/**
 * ASHA in a live local sweep (exp run --workers 2), with real training on the synthetic data:
 * a point waits at each rung's epoch for the verdict, then trains on in the same process or
 * ends `pruned` at that rung with the decision's numbers as its reason. No epoch is trained
 * twice, pruned points stop at their rung's epoch, continued points train to the end, and
 * each decision agrees with ashaVerdict over the curves recorded in the run folders. The same
 * on the queue: two `exp worker`s with their own runs folders, the curves shared in Redis.
 */
import { before, test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { spawn, type ChildProcess } from 'node:child_process';
import { BIN, expIn, tempDir } from '../helpers/cli.js';
import { startRedis } from '../helpers/redis-server.js';
import { tinyExperiment, trainingBackends } from '../helpers/training.js';
import { ashaVerdict } from '../../src/search/asha.js';
import { spawnTrain } from '../../src/exec/child.js';
import { launchEnv } from '../../src/exec/protocol.js';

let tmp: string;
let backend: string;

before(async () => {
  tmp = tempDir('exp-asha-');
  backend = (await trainingBackends())[0]!;
});

const json = <T>(p: string): T => JSON.parse(readFileSync(p, 'utf8')) as T;
const points = (sweep: string): string[] =>
  readdirSync(sweep, { withFileTypes: true })
    .filter((d) => d.isDirectory())
    .map((d) => join(sweep, d.name))
    .sort();
const lines = (p: string): Record<string, unknown>[] =>
  existsSync(p)
    ? readFileSync(p, 'utf8')
        .trim()
        .split('\n')
        .filter(Boolean)
        .map((l) => JSON.parse(l) as Record<string, unknown>)
    : [];
const round = (v: number): number => Number(v.toPrecision(4));

const EPOCHS = 4;

/** The sweep file: the ranking (best_val_loss) gives the scheduler its per-epoch metric, val_loss (min); lr 1e-7 barely moves and comes last. */
const sweepFile = (name: string): string =>
  tinyExperiment(tmp, {
    backend,
    name,
    epochs: EPOCHS,
    extra: [
      'sweep:',
      '  grid: { training.learning_rate: [0.001, 0.003, 0.0005, 0.002, 0.0000001] }',
      '  metric: { name: best_val_loss }',
      '  early_stop: { rule: asha, min_epochs: 1, reduction_factor: 2 }',
    ].join('\n'),
  });

/**
 * What every ASHA sweep must show in its run folders: each epoch once, pruned points stopped at
 * their rung's epoch with the decision's numbers (agreeing with ashaVerdict over the recorded
 * curves, order-free), continued points trained to the end with a `rung` event per rung passed.
 */
function checkAsha(dirs: readonly string[]): string[] {
  assert.equal(dirs.length, 5);
  const curve = (d: string): number[] => {
    const ls = lines(join(d, 'metrics.jsonl'));
    const epochs = ls.map((l) => l.epoch as number);
    assert.deepEqual(
      epochs,
      epochs.map((_, i) => i + 1),
      `${d}: each epoch once, in order: ${epochs.join(',')}`,
    );
    return ls.map((l) => l.val_loss as number);
  };
  const curves = new Map(dirs.map((d) => [d, curve(d)]));
  const status = new Map(dirs.map((d) => [d, json<{ status: string; reason: string }>(join(d, 'run.json'))]));
  const pruned = dirs.filter((d) => status.get(d)!.status === 'pruned');
  const tiny = dirs.find((d) => d.includes('1e-7'))!;
  assert.ok(pruned.includes(tiny), `lr 1e-7 is pruned: ${JSON.stringify([...status].map(([d, s]) => [d.split('/').at(-1), s]))}`);
  for (const d of dirs) if (!pruned.includes(d)) assert.equal(status.get(d)!.status, 'completed', d);

  for (const d of pruned) {
    const why = status.get(d)!.reason;
    const m = /^pruned at rung (\d+) \(epoch (\d+)\): val_loss (\S+) > cut-off (\S+) = top 1\/2 of (\d+) points \(rank (\d+), (\d+) go on\)$/.exec(why);
    assert.ok(m, `${d}: ${why}`);
    const [rung, epoch, value, cutoff, n] = [Number(m[1]), Number(m[2]), Number(m[3]), Number(m[4]), Number(m[5])];
    assert.equal(epoch, 2 ** (rung - 1), 'rungs end at epochs 1, 2');
    const self = curves.get(d)!;
    assert.equal(self.length, epoch, `${d} stopped at its rung's epoch`);
    assert.equal(round(self[epoch - 1]!), value, 'the reason has the value recorded at the rung');
    assert.ok(value > cutoff);
    // Order-free: what the decision saw were other points' values recorded at that epoch (a subset of what is there now).
    const others = dirs.filter((o) => o !== d).map((o) => curves.get(o)!);
    const atRung = others.filter((c) => c.length >= epoch).map((c) => round(c[epoch - 1]!));
    assert.ok(atRung.includes(cutoff), `the cut-off ${cutoff} is a value recorded at epoch ${epoch}: ${atRung.join(', ')}`);
    assert.ok(n - 1 <= atRung.length);
    if (n - 1 === atRung.length) {
      const v = ashaVerdict(self, others, epoch, { minResource: 1, eta: 2, mode: 'min' });
      assert.ok(v.prune && round(v.reason.cutoff) === cutoff, 'ashaVerdict over the recorded curves agrees');
    }
  }
  for (const d of dirs.filter((x) => !pruned.includes(x))) {
    assert.equal(curves.get(d)!.length, EPOCHS, `${d} trained to the end`);
    // Each rung it passed is a `rung` event with its numbers; it was never pruned there.
    const rungs = lines(join(d, 'events.jsonl')).filter((e) => e.type === 'rung');
    assert.deepEqual(
      rungs.map((e) => e.epoch),
      [1, 2],
      d,
    );
    for (const e of rungs) {
      const m = /^continued at rung \d \(epoch (\d)\): val_loss (\S+) <= cut-off (\S+) = top 1\/2 of \d+ points?/.exec(e.reason as string);
      assert.ok(m, String(e.reason));
      assert.equal(Number(m[2]), round(curves.get(d)![Number(m[1]) - 1]!));
      assert.ok(Number(m[2]) <= Number(m[3]));
    }
  }
  // The reason is the run's end in its tracking log too (the MLflow sink's note and status come from it).
  for (const d of pruned) {
    const end = lines(join(d, 'events.jsonl')).find((e) => e.type === 'run_ended')!;
    assert.deepEqual([end.status, end.reason], ['pruned', status.get(d)!.reason]);
  }
  return pruned;
}

test(
  'ASHA with 2 local workers: pruned points end pruned at their rung with its numbers, continued ones train on, no epoch twice',
  { timeout: 600_000 },
  async () => {
    const file = sweepFile('asha');
    const runs = join(tmp, 'runs');
    const r = await expIn(['run', file, '--runs-dir', runs, '--workers', '2'], { cwd: tmp });
    assert.equal(r.code, 0, r.stdout + r.stderr);
    const exp = join(runs, 'asha');
    const sweep = join(exp, readdirSync(exp)[0]!);
    checkAsha(points(sweep));
    const list = await expIn(['runs', sweep], { cwd: tmp });
    assert.equal(list.code, 0, list.stderr);
    assert.match(list.stdout, /note\n/);
    assert.match(list.stdout, /learning_rate=1e-7-\w+ +\w+ +pruned .*pruned at rung \d \(epoch \d\): val_loss \S+ > cut-off/);
    const cmp = await expIn(['compare', sweep], { cwd: tmp });
    assert.equal(cmp.code, 0, cmp.stderr);
    assert.match(cmp.stdout, /1e-7 +\w+ +pruned .*pruned at rung \d \(epoch \d\): val_loss/);
    const reasons = await expIn(['runs', sweep, '--columns', 'run,status,reason'], { cwd: tmp });
    assert.equal(reasons.code, 0, reasons.stderr);
    assert.match(reasons.stdout, /learning_rate=1e-7-\w+ +pruned +pruned at rung \d \(epoch \d\): val_loss/);
  },
);

test(
  'ASHA on the queue with 2 exp workers (each its own runs folder, curves in a real Redis): the same decisions, no epoch twice',
  { timeout: 600_000 },
  async () => {
    const redis = await startRedis();
    const workers: ChildProcess[] = [];
    try {
      const file = sweepFile('ashaq');
      const sub = await expIn(['run', file, '--queue', redis.url, '--detach', '--runs-dir', join(tmp, 'sub')], { cwd: tmp });
      assert.equal(sub.code, 0, sub.stdout + sub.stderr);
      const logs: string[] = ['', ''];
      const exits = ['wa', 'wb'].map((name, i) => {
        const child = spawn(process.execPath, [BIN, 'worker', '--queue', redis.url, '--runs-dir', join(tmp, name), '--name', name, '--exit-when-idle'], {
          cwd: tmp,
          env: { ...process.env, MLFLOW_TRACKING_URI: '' },
          stdio: ['ignore', 'pipe', 'pipe'],
        });
        workers.push(child);
        child.stdout!.on('data', (d: Buffer) => (logs[i] += d));
        child.stderr!.on('data', (d: Buffer) => (logs[i] += d));
        return new Promise<number | null>((r) => child.once('exit', (code) => r(code)));
      });
      const codes = await Promise.all(exits);
      assert.deepEqual(codes, [0, 0], logs.join('\n----\n'));
      // Each point was trained by one worker, in that worker's runs folder.
      const dirs = ['wa', 'wb'].flatMap((w) => {
        const exp = join(tmp, w, 'ashaq');
        return existsSync(exp) ? points(join(exp, readdirSync(exp)[0]!)) : [];
      });
      const byName = dirs.map((d) => d.split('/').at(-1)!);
      assert.equal(new Set(byName).size, byName.length, `each point in one folder: ${byName.join(', ')}`);
      const pruned = checkAsha(dirs.sort((a, b) => a.split('/').at(-1)!.localeCompare(b.split('/').at(-1)!)));
      for (const d of pruned) assert.match(logs.join('\n'), new RegExp(`${d.split('/').at(-1)!.replace(/[.=]/g, '\\$&')}: pruned in`));
    } finally {
      for (const w of workers) if (w.exitCode === null) w.kill('SIGKILL');
      await redis.stop();
    }
  },
);

test(
  'regression: a point stopped while it waited at a rung asks again for the verdict when resumed, and a prune then ends it at that rung',
  { timeout: 300_000 },
  async () => {
    const file = tinyExperiment(tmp, { backend, name: 'rungwait', epochs: 3 });
    const runs = join(tmp, 'runs-rungwait');
    assert.equal((await expIn(['run', file, '--runs-dir', runs, '--dry-run'], { cwd: tmp })).code, 0);
    const exp = join(runs, 'rungwait');
    const dir = points(join(exp, readdirSync(exp)[0]!))[0]!;
    const env = { ...process.env, ...launchEnv({ launcher: 'local', uploadCheckpoints: false, holdEpochs: [1], pinTracking: false }), MLFLOW_TRACKING_URI: '' };
    // The launcher goes before it answers: here, a Ctrl-C while the child waits at epoch 1.
    const first = spawnTrain(dir, { env, output: 'quiet', onMessage: (m) => m.type === 'epoch' && m.epoch === 1 && first.interrupt() });
    await first.exited;
    assert.equal(json<{ status: string }>(join(dir, 'run.json')).status, 'killed');
    assert.equal(lines(join(dir, 'metrics.jsonl')).length, 1);
    const asked: number[] = [];
    const second = spawnTrain(dir, {
      env,
      output: 'quiet',
      onMessage: (m) => {
        if (m.type !== 'epoch') return;
        asked.push(m.epoch);
        second.prune('pruned at rung 1 (epoch 1): the verdict it never got');
      },
    });
    await second.exited;
    assert.deepEqual(asked, [1], 'it asked about epoch 1 again and trained nothing more');
    const rec = json<{ status: string; reason: string }>(join(dir, 'run.json'));
    assert.deepEqual([rec.status, rec.reason], ['pruned', 'pruned at rung 1 (epoch 1): the verdict it never got']);
    assert.deepEqual(
      lines(join(dir, 'metrics.jsonl')).map((l) => l.epoch),
      [1],
    );
  },
);
