/**
 * A lock per run folder (`<run>/.lock`), so two processes never train the same folder.
 * Built on util/lockfile: stale locks of dead processes are taken over.
 */
import { hostname } from 'node:os';
import { join } from 'node:path';
import { lockHeld, lockOwner, tryLockFile } from '../util/lockfile.js';

export class LockedError extends Error {
  constructor(readonly dir: string, readonly owner: string) {
    super(`run folder ${dir} is being trained by ${owner}; wait for it, or stop that process`);
    this.name = 'LockedError';
  }
}

const lockPath = (dir: string): string => join(dir, '.lock');

/** Takes the folder's lock; returns a release function. Throws LockedError if a live process holds it. */
export async function acquireLock(dir: string): Promise<() => void> {
  const release = await tryLockFile(lockPath(dir));
  if (release) return release;
  const owner = lockOwner(lockPath(dir));
  throw new LockedError(dir, owner ? `process ${owner.pid}${owner.host === hostname() ? '' : ` on ${owner.host}`}` : 'another process');
}

/** Whether a live process holds the folder's training lock (a stale lock does not count). */
export const lockHeldByLiveProcess = (dir: string): boolean => lockHeld(lockPath(dir));
