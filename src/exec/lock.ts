/**
 * A lock per run folder, so two processes never train the same folder. The lock file is
 * created exclusively and names its owner; a lock whose owner process is gone (a crash,
 * a kill -9) is stale and is taken over.
 */
import { openSync, writeSync, closeSync, readFileSync, rmSync } from 'node:fs';
import { hostname } from 'node:os';
import { join } from 'node:path';

export class LockedError extends Error {
  constructor(readonly dir: string, readonly owner: string) {
    super(`run folder ${dir} is being trained by ${owner}; wait for it, or stop that process`);
    this.name = 'LockedError';
  }
}

const alive = (pid: number): boolean => {
  try { process.kill(pid, 0); return true; } catch (e) { return (e as NodeJS.ErrnoException).code === 'EPERM'; }
};

/** Takes the folder's lock; returns a release function. Throws LockedError if held by a live process. */
export function acquireLock(dir: string): () => void {
  const path = join(dir, '.lock');
  for (let attempt = 0; attempt < 2; attempt++) {
    try {
      const fd = openSync(path, 'wx');
      writeSync(fd, JSON.stringify({ pid: process.pid, host: hostname(), since: new Date().toISOString() }));
      closeSync(fd);
      return () => rmSync(path, { force: true });
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
      let owner: { pid: number; host: string } | undefined;
      try { owner = JSON.parse(readFileSync(path, 'utf8')) as { pid: number; host: string }; } catch { owner = undefined; }
      if (owner && owner.host === hostname() && alive(owner.pid) && owner.pid !== process.pid) throw new LockedError(dir, `process ${owner.pid}`);
      if (owner && owner.host !== hostname()) throw new LockedError(dir, `process ${owner.pid} on ${owner.host}`);
      rmSync(path, { force: true }); // stale: its owner is gone
    }
  }
  throw new LockedError(dir, 'another process');
}

/** Whether a live process on this host holds the folder's lock (a stale lock does not count). */
export function lockHeldByLiveProcess(dir: string): boolean {
  try {
    const owner = JSON.parse(readFileSync(join(dir, '.lock'), 'utf8')) as { pid: number; host: string };
    return owner.host !== hostname() || alive(owner.pid);
  } catch {
    return false;
  }
}
