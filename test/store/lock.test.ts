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

/** Spawns `n` processes that each try to take the lock `base` at the same moment; returns how many got it. */
async function race(base: string, n: number): Promise<number> {
  const script = `
    import { tryLock } from ${JSON.stringify(join(ROOT, 'dist', 'store', 'lock.js'))};
    const lock = await tryLock(${JSON.stringify(base)});
    process.stdout.write(lock ? 'won' : 'lost');
    await new Promise((r) => setTimeout(r, 1500)); // hold it while the others try
    lock?.release();`;
  const start = Date.now() + 600;
  const kids = Array.from({ length: n }, () =>
    spawn(process.execPath, ['--input-type=module', '-e', `await new Promise((r) => setTimeout(r, ${start} - Date.now())); ${script}`], {
      stdio: ['ignore', 'pipe', 'inherit'],
    }),
  );
  const outs = await Promise.all(
    kids.map(
      (k) =>
        new Promise<string>((r) => {
          let o = '';
          k.stdout.on('data', (d: Buffer) => (o += d));
          k.on('exit', () => r(o));
        }),
    ),
  );
  return outs.filter((o) => o === 'won').length;
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

test('regression: of 6 concurrent takers of a stale lock, exactly one wins', async () => {
  const dir = tempDir('exp-lock-');
  const base = join(dir, '.lock');
  writeFileSync(`${base}.1`, JSON.stringify({ pid: await deadPid(), host: hostname(), ...(BOOT ? { boot: BOOT } : {}), token: 'dead', since: '' }));
  assert.equal(lockHeld(base), false, 'its owner is gone');
  assert.equal(await race(base, 6), 1);
});

test('regression: 6 concurrent takers of a free lock: exactly one wins', async () => {
  const dir = tempDir('exp-lock-');
  assert.equal(await race(join(dir, '.lock'), 6), 1);
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
