/**
 * ASHA on the queue with a worker SIGKILLed mid-point (issue 20, "Tests"): two `exp worker`s on
 * a shared runs folder and a real Redis; once worker A's point has written an epoch, A's whole
 * process group (the worker and its training child) is SIGKILLed. B takes the point over from
 * its checkpoint. Every point ends completed or pruned at a named rung, no epoch is in any
 * metrics.jsonl twice, and each point trained no more epochs than its rung (or the end) allows.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { BIN, expIn, tempDir } from '../helpers/cli.js';
import { startRedis } from '../helpers/redis-server.js';
import { tinyExperiment, trainingBackends } from '../helpers/training.js';

const EPOCHS = 4;
const LRS = '[0.001, 0.003, 0.0005, 0.002, 0.0000001, 0.0000002]';

const epochsOf = (dir: string): number[] => {
  const p = join(dir, 'metrics.jsonl');
  if (!existsSync(p)) return [];
  const text = readFileSync(p, 'utf8').trim();
  return text ? text.split('\n').map((l) => (JSON.parse(l) as { epoch: number }).epoch) : [];
};
const record = (dir: string): { status: string; reason?: string; attempts?: number } | undefined =>
  existsSync(join(dir, 'run.json')) ? (JSON.parse(readFileSync(join(dir, 'run.json'), 'utf8')) as { status: string }) : undefined;

/** The point folders of the one sweep under runs/NAME. */
const pointsIn = (runs: string, name: string): string[] => {
  const exp = join(runs, name);
  if (!existsSync(exp)) return [];
  return readdirSync(exp).flatMap((s) =>
    readdirSync(join(exp, s), { withFileTypes: true })
      .filter((d) => d.isDirectory())
      .map((d) => join(exp, s, d.name)),
  );
};

function startWorker(tmp: string, url: string, runs: string, name: string, extra: string[]): { child: ChildProcess; log: () => string } {
  let log = '';
  const args = [BIN, 'worker', '--queue', url, '--runs-dir', runs, '--name', name, '--lock-seconds', '4', '--stalled-seconds', '2', ...extra];
  // detached: its own process group, so the test can SIGKILL the worker and its training child together.
  const child = spawn(process.execPath, args, {
    cwd: tmp,
    env: { ...process.env, MLFLOW_TRACKING_URI: '' },
    stdio: ['ignore', 'pipe', 'pipe'],
    detached: true,
  });
  child.stdout!.on('data', (d: Buffer) => (log += d));
  child.stderr!.on('data', (d: Buffer) => (log += d));
  return { child, log: () => log };
}

const exited = (c: ChildProcess): Promise<number | null> => new Promise((r) => (c.exitCode !== null ? r(c.exitCode) : c.once('exit', (code) => r(code))));

async function waitFor<T>(what: string, f: () => T | undefined, ms: number): Promise<T> {
  const deadline = Date.now() + ms;
  for (;;) {
    const v = f();
    if (v !== undefined) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

test(
  'ASHA on the queue, a worker SIGKILLed mid-point: its point is taken over from its checkpoint, pruned points name their rung, no epoch twice',
  { timeout: 900_000 },
  async (t) => {
    const tmp = tempDir('exp-asha-kill-');
    const backend = (await trainingBackends())[0]!;
    const redis = await startRedis();
    const extra = `sweep:\n  grid: { training.learning_rate: ${LRS} }\n  metric: { name: best_val_loss }\n  early_stop: { rule: asha, min_epochs: 1, reduction_factor: 2 }`;
    const file = tinyExperiment(tmp, { backend, name: 'ashakill', epochs: EPOCHS, extra });
    const runs = join(tmp, 'runs');
    const a = startWorker(tmp, redis.url, runs, 'ka', []);
    let b: ReturnType<typeof startWorker> | undefined;
    try {
      const sub = await expIn(['run', file, '--queue', redis.url, '--detach', '--runs-dir', runs], { cwd: tmp });
      assert.equal(sub.code, 0, sub.stdout + sub.stderr);
      b = startWorker(tmp, redis.url, runs, 'kb', ['--exit-when-idle']);
      // A's point: one A says it started, with an epoch written and more to go.
      const victim = await waitFor(
        "worker A's point to write an epoch",
        () =>
          pointsIn(runs, 'ashakill').find((d) => {
            const n = epochsOf(d).length;
            return a.log().includes(`${d.split('/').at(-1)}: started (job`) && n >= 1 && n < EPOCHS && record(d)?.status === 'running';
          }),
        600_000,
      );
      process.kill(-a.child.pid!, 'SIGKILL');
      await exited(a.child);
      const killedRunning = record(victim)?.status === 'running';
      assert.equal(await exited(b.child), 0, `${b.log()}\n---- A:\n${a.log()}`);

      const dirs = pointsIn(runs, 'ashakill');
      assert.equal(dirs.length, 6, 'one folder per point');
      let total = 0;
      let pruned = 0;
      for (const d of dirs) {
        const epochs = epochsOf(d);
        assert.deepEqual(
          epochs,
          epochs.map((_, i) => i + 1),
          `${d}: each epoch once, in order`,
        );
        total += epochs.length;
        const rec = record(d)!;
        if (rec.status === 'pruned') {
          pruned++;
          const m = /^pruned at rung (\d+) \(epoch (\d+)\): /.exec(rec.reason ?? '');
          assert.ok(m, `${d}: ${rec.reason}`);
          assert.equal(Number(m[2]), 2 ** (Number(m[1]) - 1), 'rungs at epochs 1, 2');
          assert.equal(epochs.length, Number(m[2]), `${d} stopped at its rung's epoch`);
        } else {
          assert.equal(rec.status, 'completed', `${d}: ${JSON.stringify(rec)}`);
          assert.equal(epochs.length, EPOCHS, `${d} trained to the end`);
        }
      }
      assert.ok(pruned >= 1 && total < dirs.length * EPOCHS, `ASHA pruned something: ${pruned} pruned, ${total} epochs`);
      t.diagnostic(
        `${pruned} of ${dirs.length} pruned, ${total} epochs of ${dirs.length * EPOCHS}; killed point ${victim.split('/').at(-1)} ${killedRunning ? 'taken over' : 'had ended'}`,
      );
      if (killedRunning) {
        // The killed point was resumed, not restarted: a second attempt from its checkpoint.
        assert.ok((record(victim)!.attempts ?? 0) >= 2, JSON.stringify(record(victim)));
        assert.match(readFileSync(join(victim, 'train.log'), 'utf8'), /resuming from checkpoints\/last/);
      }
    } finally {
      for (const w of [a, b]) if (w && w.child.exitCode === null && w.child.signalCode === null) process.kill(-w.child.pid!, 'SIGKILL');
      await redis.stop();
    }
  },
);
