/**
 * Exclusive locks on folders of the run store (the training lock of a run folder, the MLflow
 * sink's locks), safe across processes and, over shared storage, across machines.
 *
 * A lock is a small file `<base>.<generation>` naming its owner; the lock is the existing file
 * with the highest generation. Every file is made with O_EXCL, so of two processes that race
 * for the same generation exactly one wins. That makes taking over a stale lock atomic: a
 * taker creates the next generation (only one can), then removes the stale file; a taker that
 * loses finds the new generation live and backs off. A holder that was presumed dead (its
 * file is gone) finds out at its next check (`stillHeld`) and must stop.
 *
 * Whether the owner is alive: on the same machine (hostname and boot id), its pid exists and
 * has the same start time (so a reused pid does not count); on another machine, the file's
 * heartbeat (its mtime, refreshed by the holder) is recent.
 */
import { closeSync, openSync, readdirSync, readFileSync, rmSync, statSync, utimesSync, writeSync } from 'node:fs';
import { hostname } from 'node:os';
import { basename, dirname, join } from 'node:path';
import { Worker } from 'node:worker_threads';
import { randomBytes } from 'node:crypto';

export interface LockOwner {
  pid: number;
  host: string;
  /** /proc/sys/kernel/random/boot_id: two machines (or containers) may share a hostname. */
  boot?: string;
  /** The process's start time in clock ticks since boot (/proc/<pid>/stat field 22). */
  start?: number;
  token: string;
  since: string;
}

/** A lock whose heartbeat is older than this (on another machine) is stale. */
export const STALE_MS = (): number => (Number(process.env.EXP_LOCK_STALE_SECONDS) || 60) * 1000;
const HEARTBEAT_MS = 10_000;
/** An owner file that cannot be parsed yet is being written; this young, it counts as held. */
const WRITING_MS = 5_000;

const readOr = (path: string): string | undefined => {
  try {
    return readFileSync(path, 'utf8');
  } catch {
    return undefined;
  }
};
const BOOT_ID = readOr('/proc/sys/kernel/random/boot_id')?.trim();

/** The start time (clock ticks since boot) of process `pid`, or undefined where /proc cannot tell. */
export function processStart(pid: number): number | undefined {
  const stat = readOr(`/proc/${pid}/stat`);
  if (!stat) return undefined;
  // The command name (field 2) may hold spaces and parentheses: fields after it follow the last ')'.
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  const v = Number(fields[19]);
  return Number.isFinite(v) ? v : undefined;
}

export const pidAlive = (pid: number): boolean => {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
};

const sameMachine = (o: LockOwner): boolean => o.host === hostname() && (o.boot === undefined || BOOT_ID === undefined || o.boot === BOOT_ID);

/** Whether the owner of a lock file is alive (see the module comment). */
export function ownerAlive(owner: LockOwner | undefined, mtimeMs: number, now = Date.now()): boolean {
  if (owner === undefined) return now - mtimeMs < WRITING_MS;
  if (sameMachine(owner)) {
    if (!pidAlive(owner.pid)) return false;
    const start = processStart(owner.pid);
    return owner.start === undefined || start === undefined || start === owner.start;
  }
  return now - mtimeMs < STALE_MS();
}

interface Generation {
  gen: number;
  path: string;
}

function generations(base: string): Generation[] {
  const dir = dirname(base);
  const prefix = `${basename(base)}.`;
  let names: string[];
  try {
    names = readdirSync(dir);
  } catch {
    return [];
  }
  return names
    .flatMap((n) => {
      if (!n.startsWith(prefix)) return [];
      const g = n.slice(prefix.length);
      return /^\d+$/.test(g) ? [{ gen: Number(g), path: join(dir, n) }] : [];
    })
    .sort((a, b) => a.gen - b.gen);
}

const gone = (e: unknown): boolean => (e as NodeJS.ErrnoException).code === 'ENOENT';

/**
 * The owner named in a lock file; undefined when the file is gone. A file that cannot be read
 * (permissions on a shared store) or parsed (being written) has no known owner.
 */
function readOwner(path: string): { owner: LockOwner | undefined; mtimeMs: number; unreadable?: true } | undefined {
  let mtimeMs: number;
  try {
    mtimeMs = statSync(path).mtimeMs;
  } catch (e) {
    return gone(e) ? undefined : { owner: undefined, mtimeMs: Date.now(), unreadable: true };
  }
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (e) {
    return gone(e) ? undefined : { owner: undefined, mtimeMs, unreadable: true };
  }
  try {
    return { owner: JSON.parse(text) as LockOwner, mtimeMs };
  } catch {
    return { owner: undefined, mtimeMs };
  }
}

/** The current lock file of `base` and its owner, or undefined when the lock is free. */
export function currentLock(base: string): { path: string; gen: number; owner: LockOwner | undefined; alive: boolean } | undefined {
  for (let look = 0; ; look++) {
    const top = generations(base).at(-1);
    if (top === undefined) return undefined;
    const o = readOwner(top.path);
    // An owner we cannot read is judged by its heartbeat alone, as one on another machine.
    if (o) return { ...top, owner: o.owner, alive: o.unreadable ? Date.now() - o.mtimeMs < STALE_MS() : ownerAlive(o.owner, o.mtimeMs) };
    // Removed while we looked: a taker has made a newer generation (and removed this stale one),
    // or the holder released it. Look again. Reading on down to an older file, or calling the
    // lock free, would let this process create a generation that is not the newest: two winners.
    // A listing that keeps naming a removed file (NFS caches directories) is a lock in flux:
    // held, for now, by someone else.
    if (look >= 50) return { ...top, owner: undefined, alive: true };
  }
}

/** Whether a live process holds the lock `base` (a stale lock does not count). */
export const lockHeld = (base: string): boolean => currentLock(base)?.alive === true;

/** Describes the owner for a message: "process 123" or "process 123 on host-b". */
export const describeOwner = (o: LockOwner | undefined): string => (o ? `process ${o.pid}${o.host === hostname() ? '' : ` on ${o.host}`}` : 'another process');

export interface Lock {
  /** The lock file held. */
  readonly path: string;
  /** Whether this process still holds it (its file is there and names it). */
  stillHeld(): boolean;
  release(): void;
}

export interface LockOptions {
  /** Keep trying this long while another live process holds it; default 0. */
  waitMs?: number;
  /**
   * Refresh the heartbeat so another machine does not think the owner dead: 'thread' keeps
   * beating while this thread is busy (training runs long synchronous kernels); 'timer' beats
   * from this thread's event loop; 'none' for locks held for moments.
   */
  heartbeat?: 'thread' | 'timer' | 'none';
}

function createGeneration(base: string, gen: number, owner: LockOwner): string | undefined {
  const path = `${base}.${gen}`;
  let fd: number;
  try {
    fd = openSync(path, 'wx');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'EEXIST') return undefined;
    throw e;
  }
  try {
    writeSync(fd, JSON.stringify(owner));
  } finally {
    closeSync(fd);
  }
  return path;
}

/**
 * Takes the lock `base` (files `base.<n>`); returns it, or undefined while another live
 * process holds it after waiting up to `waitMs`. A stale lock is taken over atomically.
 */
export async function tryLock(base: string, opts: LockOptions = {}): Promise<Lock | undefined> {
  const deadline = Date.now() + (opts.waitMs ?? 0);
  const owner: LockOwner = {
    pid: process.pid,
    host: hostname(),
    ...(BOOT_ID ? { boot: BOOT_ID } : {}),
    ...((s) => (s === undefined ? {} : { start: s }))(processStart(process.pid)),
    token: randomBytes(8).toString('hex'),
    since: new Date().toISOString(),
  };
  for (;;) {
    const cur = currentLock(base);
    if (!cur || !cur.alive) {
      const path = createGeneration(base, (cur?.gen ?? 0) + 1, owner);
      if (path) {
        // The stale owner's file (it finds out it lost), and leftovers of old crashes. Ours is the
        // newest generation whatever is left behind, so a file that will not go is no matter.
        for (const g of generations(base)) if (g.gen <= (cur?.gen ?? 0)) removeQuietly(g.path);
        return holdLock(path, owner.token, opts.heartbeat ?? 'none');
      }
      continue; // another taker won this generation: look again
    }
    if (Date.now() >= deadline) return undefined;
    await new Promise((r) => setTimeout(r, 100));
  }
}

function removeQuietly(path: string): void {
  try {
    rmSync(path, { force: true });
  } catch {
    /* not a file we can remove (a folder, permissions): the newer generation rules anyway */
  }
}

function holdLock(path: string, token: string, heartbeat: NonNullable<LockOptions['heartbeat']>): Lock {
  let beat: { stop(): void } | undefined;
  if (heartbeat === 'timer') {
    const t = setInterval(() => touch(path), HEARTBEAT_MS);
    t.unref();
    beat = { stop: () => clearInterval(t) };
  } else if (heartbeat === 'thread') {
    const w = new Worker(
      `const { workerData } = require('node:worker_threads'); const fs = require('node:fs');
      setInterval(() => { try { const t = new Date(); fs.utimesSync(workerData.path, t, t); } catch {} }, workerData.ms);`,
      { eval: true, workerData: { path, ms: HEARTBEAT_MS } },
    );
    w.unref();
    beat = { stop: () => void w.terminate() };
  }
  let released = false;
  return {
    path,
    stillHeld: () => !released && readOwner(path)?.owner?.token === token,
    release: () => {
      if (released) return;
      released = true;
      beat?.stop();
      // Only our own file: after a takeover the path may not be ours any more (a new
      // generation has another name, so removing ours never removes the taker's).
      if (readOwner(path)?.owner?.token === token) rmSync(path, { force: true });
    },
  };
}

function touch(path: string): void {
  try {
    const t = new Date();
    utimesSync(path, t, t);
  } catch {
    /* released or taken over */
  }
}
