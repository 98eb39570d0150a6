/**
 * Exclusive lock files that name their owner (pid and host). A lock whose owner process is
 * gone (a crash, a kill -9) is stale and is taken over; an unreadable lock younger than 5 s
 * is being written right now and counts as held. The training lock and the MLflow sink's
 * locks are both built on this.
 */
import { closeSync, openSync, readFileSync, rmSync, statSync, writeSync } from 'node:fs';
import { hostname } from 'node:os';

export interface LockOwner { pid: number; host: string }

export const alive = (pid: number): boolean => {
  try { process.kill(pid, 0); return true; } catch (e) { return (e as NodeJS.ErrnoException).code === 'EPERM'; }
};

/** The lock's owner, or undefined when the file is missing or not (yet) readable. */
export function lockOwner(path: string): LockOwner | undefined {
  try { return JSON.parse(readFileSync(path, 'utf8')) as LockOwner; } catch { return undefined; }
}

/** Whether a live process (on this host, or any process on another host) holds the lock. */
export function lockHeld(path: string): boolean {
  const owner = lockOwner(path);
  if (owner === undefined) {
    let age = Infinity;
    try { age = Date.now() - statSync(path).mtimeMs; } catch { return false; }
    return age < 5_000;
  }
  return owner.host !== hostname() || alive(owner.pid);
}

/**
 * Takes the lock at `path`; returns a release function, or undefined while another live
 * process holds it after waiting up to `waitMs`.
 */
export async function tryLockFile(path: string, waitMs = 0): Promise<(() => void) | undefined> {
  const deadline = Date.now() + waitMs;
  for (;;) {
    try {
      const fd = openSync(path, 'wx');
      try { writeSync(fd, JSON.stringify({ pid: process.pid, host: hostname(), since: new Date().toISOString() })); } finally { closeSync(fd); }
      return () => rmSync(path, { force: true });
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
    }
    if (!lockHeld(path)) { rmSync(path, { force: true }); continue; } // stale: its owner is gone
    if (Date.now() >= deadline) return undefined;
    await new Promise((r) => setTimeout(r, 100));
  }
}
