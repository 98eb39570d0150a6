/**
 * One `exp train <folder>` child process, as every launcher (exp run, a queue worker, exp
 * reproduce) starts it: through execa, in a process group of its own (so a Ctrl-C in the
 * terminal reaches only the launcher, which forwards it exactly once), with an IPC channel
 * for progress and for stop or prune requests, and killed by execa's cleanup if the launcher
 * exits while it runs. If the launcher dies without cleanup (kill -9), the child sees its
 * IPC channel close and stops at the next batch.
 */
import { execa } from 'execa';
import type { ProcessExit } from '../store/types.js';
import type { FromChild, ToChild } from './protocol.js';

const BIN = new URL('../../bin/exp.js', import.meta.url).pathname;

export interface ChildOptions {
  env: NodeJS.ProcessEnv;
  force?: boolean;
  /** 'inherit' shows the child's own progress (one point at a time); 'quiet' leaves it to train.log. */
  output: 'inherit' | 'quiet';
  onMessage?: (m: FromChild) => void;
}

export interface TrainChild {
  readonly dir: string;
  readonly pid: number | undefined;
  /** Asks it to stop at the next batch (the first Ctrl-C), or at once (the second). */
  interrupt(): void;
  /** Sends a prune request: it stops at the next batch as `pruned`. */
  prune(reason: string): void;
  /** Asks it over IPC to stop at the next batch as `killed`: unlike a signal, asking twice never aborts it. */
  stop(reason: string): void;
  /** Lets it go on past a rung it waits at (see LaunchSettings.holdEpochs). */
  go(epoch: number, note?: string): void;
  /** Resolves when it has exited. */
  readonly exited: Promise<ProcessExit>;
}

export function spawnTrain(dir: string, opts: ChildOptions): TrainChild {
  const sub = execa(process.execPath, [BIN, 'train', dir, ...(opts.force ? ['--force'] : [])], {
    env: opts.env,
    extendEnv: false,
    ipc: true,
    serialization: 'json',
    detached: true,
    cleanup: true,
    reject: false,
    stdin: 'ignore',
    stdout: opts.output === 'inherit' ? 'inherit' : 'ignore',
    stderr: opts.output === 'inherit' ? 'inherit' : 'ignore',
  });
  void (async () => {
    try {
      for await (const m of sub.getEachMessage()) opts.onMessage?.(m as FromChild);
    } catch {
      /* the channel closed with the child */
    }
  })();
  const exited = sub.then(
    (r) => ({ code: r.exitCode ?? null, signal: r.signal ?? null }),
    () => ({ code: null, signal: null }),
  );
  return {
    dir,
    pid: sub.pid,
    interrupt: () => {
      try {
        sub.kill('SIGINT');
      } catch {
        /* already gone */
      }
    },
    prune: (reason) => {
      void sub.sendMessage({ type: 'prune', reason } satisfies ToChild).catch(() => undefined);
    },
    stop: (reason) => {
      void sub.sendMessage({ type: 'stop', reason } satisfies ToChild).catch(() => undefined);
    },
    go: (epoch, note) => {
      void sub.sendMessage({ type: 'go', epoch, ...(note ? { note } : {}) } satisfies ToChild).catch(() => undefined);
    },
    exited,
  };
}
