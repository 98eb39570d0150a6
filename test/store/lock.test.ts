/**
 * The run store's locks under contention: a stale lock (dead owner, or a reused pid) is taken
 * over by exactly one of many concurrent takers; a live one is never taken; a holder that was
 * presumed dead finds out it lost the lock; a lock on another machine goes stale when its
 * heartbeat stops.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdirSync, readdirSync, readFileSync, utimesSync, writeFileSync } from 'node:fs';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { tempDir, ROOT } from '../helpers/cli.js';
import { currentLock, lockHeld, processStart, tryLock } from '../../src/store/lock.js';

const BOOT = (() => {
  try {
    return readFileSync('/proc/sys/kernel/random/boot_id', 'utf8').trim();
  } catch {
    return undefined;
  }
})();

/** A pid that is not running: a child that has exited. */
async function deadPid(): Promise<number> {
  const c = spawn(process.execPath, ['-e', '0']);
  await new Promise((r) => c.on('exit', r));
  return c.pid!;
}

/**
 * A process that takes locks when told: it says `ready` once loaded, then for each line (a lock
 * base, as JSON) tries that lock, says `won` or `lost`, and a winner holds it until the next
 * line, then releases it and says `released`. No clocks: the test orders everything by these
 * messages, so a slow machine only makes a round slower, never different.
 */
class Taker {
  private readonly child;
  private readonly lines: string[] = [];
  private waiting: ((l: string) => void) | undefined;

  constructor() {
    const script = `
      import { tryLock } from ${JSON.stringify(join(ROOT, 'dist', 'store', 'lock.js'))};
      import { createInterface } from 'node:readline';
      const lines = createInterface({ input: process.stdin })[Symbol.asyncIterator]();
      const next = async () => (await lines.next()).value;
      process.stdout.write('ready\\n');
      for (let cmd = await next(); cmd !== undefined && cmd !== 'exit'; cmd = await next()) {
        const lock = await tryLock(JSON.parse(cmd));
        process.stdout.write(lock ? 'won\\n' : 'lost\\n');
        if (lock) {
          await next();
          lock.release();
          process.stdout.write('released\\n');
        }
      }
      process.exit(0); // stdin (readline) would keep it alive`;
    this.child = spawn(process.execPath, ['--input-type=module', '-e', script], { stdio: ['pipe', 'pipe', 'inherit'] });
    let buf = '';
    this.child.stdout.on('data', (d: Buffer) => {
      buf += d.toString();
      for (let i = buf.indexOf('\n'); i >= 0; i = buf.indexOf('\n')) {
        this.lines.push(buf.slice(0, i));
        buf = buf.slice(i + 1);
      }
      this.wake();
    });
    this.child.on('exit', () => {
      this.lines.push(`exited`);
      this.wake();
    });
  }

  private wake(): void {
    if (this.waiting && this.lines.length > 0) {
      const w = this.waiting;
      this.waiting = undefined;
      w(this.lines.shift()!);
    }
  }

  /** The next thing it says. */
  next(): Promise<string> {
    return new Promise((r) => {
      this.waiting = r;
      this.wake();
    });
  }

  send(line: string): void {
    this.child.stdin.write(`${line}\n`);
  }

  async exit(): Promise<void> {
    this.send('exit');
    this.child.stdin.end();
    while ((await this.next()) !== 'exited');
  }
}

/**
 * `n` takers race for a lock in each of `rounds` rounds: all are loaded and waiting before any
 * is told to go; the winner holds the lock until every taker has answered; returns the number
 * of winners per round. `prepare` sets up each round's lock base (a stale lock, or none).
 */
async function race(dir: string, n: number, rounds: number, prepare: (base: string) => Promise<void> = async () => undefined): Promise<number[]> {
  const takers = Array.from({ length: n }, () => new Taker());
  try {
    for (const t of takers) assert.equal(await t.next(), 'ready');
    const winners: number[] = [];
    for (let round = 0; round < rounds; round++) {
      const base = join(dir, `round-${round}.lock`);
      await prepare(base);
      for (const t of takers) t.send(JSON.stringify(base));
      const said = await Promise.all(takers.map((t) => t.next()));
      assert.ok(
        said.every((s) => s === 'won' || s === 'lost'),
        said.join(','),
      );
      winners.push(said.filter((s) => s === 'won').length);
      for (const [i, t] of takers.entries()) {
        if (said[i] !== 'won') continue;
        t.send('release');
        assert.equal(await t.next(), 'released');
      }
      assert.equal(lockHeld(base), false, 'released at the end of the round');
    }
    return winners;
  } finally {
    await Promise.all(takers.map((t) => t.exit()));
  }
}

test('a free lock is taken once; a live lock is not taken; release frees it', async () => {
  const dir = tempDir('exp-lock-');
  const base = join(dir, '.lock');
  const a = await tryLock(base);
  assert.ok(a);
  assert.equal(await tryLock(base), undefined, 'held by a live process (this one)');
  assert.ok(lockHeld(base));
  a.release();
  assert.equal(lockHeld(base), false);
  assert.deepEqual(readdirSync(dir), []);
});

const ROUNDS = 100;

test(`regression: of 6 concurrent takers of a stale lock, exactly one wins, in each of ${ROUNDS} rounds`, async () => {
  const dir = tempDir('exp-lock-');
  const dead = await deadPid();
  const winners = await race(dir, 6, ROUNDS, async (base) => {
    writeFileSync(`${base}.1`, JSON.stringify({ pid: dead, host: hostname(), ...(BOOT ? { boot: BOOT } : {}), token: 'dead', since: '' }));
    assert.equal(lockHeld(base), false, 'its owner is gone');
  });
  assert.deepEqual(winners, Array(ROUNDS).fill(1));
});

test(`regression: 6 concurrent takers of a free lock: exactly one wins, in each of ${ROUNDS} rounds`, async () => {
  const dir = tempDir('exp-lock-');
  assert.deepEqual(await race(dir, 6, ROUNDS), Array(ROUNDS).fill(1));
});

test('regression: a reused pid does not keep a stale lock alive (its start time differs)', async () => {
  const dir = tempDir('exp-lock-');
  const base = join(dir, '.lock');
  // The owner's pid is alive (it is this process), but it started at another time: another process.
  writeFileSync(
    `${base}.1`,
    JSON.stringify({
      pid: process.pid,
      host: hostname(),
      ...(BOOT ? { boot: BOOT } : {}),
      start: (processStart(process.pid) ?? 0) + 12345,
      token: 'old',
      since: '',
    }),
  );
  assert.equal(lockHeld(base), false);
  const mine = await tryLock(base);
  assert.ok(mine);
  assert.equal(currentLock(base)?.gen, 2);
  mine.release();
});

test("a holder presumed dead finds out it lost the lock; another machine's lock goes stale when its heartbeat stops", async () => {
  const dir = tempDir('exp-lock-');
  const base = join(dir, '.lock');
  writeFileSync(`${base}.1`, JSON.stringify({ pid: 1, host: 'other-machine', token: 'remote', since: '' }));
  assert.equal(lockHeld(base), true, 'a fresh heartbeat on another machine counts as alive');
  const old = new Date(Date.now() - 120_000);
  utimesSync(`${base}.1`, old, old);
  assert.equal(lockHeld(base), false, 'no heartbeat for 2 minutes: stale');
  const a = await tryLock(base);
  assert.ok(a);
  assert.ok(a.stillHeld());
  // Someone else decides a was dead and takes over (as another machine would).
  const stale = new Date(Date.now() - 120_000);
  const path = a.path;
  writeFileSync(path, JSON.stringify({ pid: 1, host: 'gone-machine', token: (JSON.parse(readFileSync(path, 'utf8')) as { token: string }).token, since: '' }));
  utimesSync(path, stale, stale);
  const b = await tryLock(base);
  assert.ok(b);
  assert.equal(a.stillHeld(), false);
  a.release(); // must not remove b's lock
  assert.ok(b.stillHeld());
  b.release();
});

test('a lock file that cannot be read is judged by its heartbeat: held while fresh, taken when stale; never a hang', async () => {
  const dir = tempDir('exp-lock-');
  const base = join(dir, '.lock');
  mkdirSync(`${base}.1`); // stat works, reading fails (EISDIR), as an unreadable file on a shared store
  assert.equal(lockHeld(base), true);
  assert.equal(await tryLock(base), undefined);
  const old = new Date(Date.now() - 10 * 60_000);
  utimesSync(`${base}.1`, old, old);
  assert.equal(lockHeld(base), false);
  const lock = await tryLock(base);
  assert.ok(lock);
  assert.equal(lock.path, `${base}.2`);
  assert.equal(currentLock(base)?.gen, 2);
  lock.release();
});
