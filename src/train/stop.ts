/**
 * Why a training process should stop before it is done, gathered in one place that the loop
 * polls between batches:
 *  - Ctrl-C or SIGTERM: acknowledged at once, honoured at the next batch (the position is
 *    saved, so nothing is lost); a second one aborts at once.
 *  - the launching process is gone (its IPC channel closed, e.g. `exp run` killed with -9):
 *    an orphan stops cleanly instead of training on unwatched.
 *  - the launcher says to stop (a sweep's early-termination rule prunes the run).
 *  - another process took the folder's lock (this one was presumed dead).
 */
import type { StopRequest } from './loop.js';
import type { FromChild, ToChild } from '../exec/protocol.js';

export interface StopOptions {
  say: (line: string) => void;
  /** Called on a second Ctrl-C/SIGTERM: record the end synchronously; exitNow then ends the process. */
  abort: (reason: string) => void;
  /**
   * Ends the process at once after abort (the CLI's, which exits 130: exit codes are decided in
   * cli/ and bin/ only). Without it the run stops at the next batch, as after the first signal.
   */
  exitNow?: () => void;
  /** Whether this process still holds the folder's lock. */
  stillHeld?: () => boolean;
  /**
   * A repeated SIGTERM is the same request, not an abort: under Slurm (EXP_LAUNCHER=slurm) one
   * scancel or requeue delivers SIGTERM to every process of the job more than once, and Slurm
   * SIGKILLs after its KillWait anyway. SIGINT twice still aborts.
   */
  termOnce?: boolean;
}

export class StopControl {
  private request: StopRequest | undefined;
  private readonly cleanups: (() => void)[] = [];
  private lockChecked = 0;
  /** Rungs the launcher let go on past (with its note), and the waiter for the next one. */
  private readonly passed = new Map<number, string>();
  private waiter: (() => void) | undefined;

  constructor(private readonly opts: StopOptions) {}

  /** Starts listening for signals and for the launcher; returns this. */
  install(): this {
    const onSignal = (sig: NodeJS.Signals): void => {
      if (this.request?.status === 'killed' && sig === 'SIGTERM' && this.opts.termOnce) return;
      if (this.request?.status === 'killed') {
        this.opts.say(`\n${sig} again: stopping now\n`);
        this.opts.abort(`aborted by a second ${sig}`);
        this.opts.exitNow?.();
        return;
      }
      this.request = { status: 'killed', reason: `stopped by ${sig}` };
      this.opts.say(`\nstopping: finishing the current batch, press Ctrl-C again to abort\n`);
    };
    process.on('SIGINT', onSignal);
    process.on('SIGTERM', onSignal);
    this.cleanups.push(() => {
      process.off('SIGINT', onSignal);
      process.off('SIGTERM', onSignal);
    });
    if (process.send !== undefined && process.connected) {
      const onMessage = (m: unknown): void => {
        const msg = m as Partial<ToChild>;
        if ((msg.type === 'stop' || msg.type === 'prune') && typeof msg.reason === 'string') {
          this.request ??= { status: msg.type === 'prune' ? 'pruned' : 'killed', reason: msg.reason };
        } else if (msg.type === 'go' && Number.isInteger(msg.epoch)) {
          this.passed.set(msg.epoch!, typeof msg.note === 'string' ? msg.note.slice(0, 2000) : '');
        }
        this.waiter?.();
      };
      const onGone = (): void => {
        this.request ??= { status: 'killed', reason: 'the process that launched it went away (killed?)' };
        this.waiter?.();
      };
      process.on('message', onMessage);
      process.on('disconnect', onGone);
      process.channel?.unref(); // the channel alone must not keep the process alive once training ends
      this.cleanups.push(() => {
        process.off('message', onMessage);
        process.off('disconnect', onGone);
      });
    }
    return this;
  }

  /** The pending request, if any; polled by the loop between batches. */
  get(): StopRequest | undefined {
    if (!this.request && this.opts.stillHeld && Date.now() - this.lockChecked > 5_000) {
      this.lockChecked = Date.now();
      if (!this.opts.stillHeld()) this.request = { status: 'killed', reason: 'another process took over this run folder (this one was presumed dead)' };
    }
    return this.request;
  }

  /**
   * Waits at a rung for the launcher's verdict on `epoch`: resolves with its note when it says go
   * on, or undefined when a stop or prune request came (get() has it), the launcher went away, or
   * nothing came in `timeoutMs` (a launcher that never answers must not hold the run forever).
   */
  async verdict(epoch: number, timeoutMs: number): Promise<{ go: boolean; note?: string; timedOut?: boolean }> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      if (this.passed.has(epoch)) return { go: true, note: this.passed.get(epoch)! };
      if (this.get()) return { go: false };
      const left = deadline - Date.now();
      if (left <= 0) return { go: true, timedOut: true };
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, Math.min(left, 5_000));
        this.waiter = () => {
          clearTimeout(t);
          resolve();
        };
      });
      this.waiter = undefined;
    }
  }

  uninstall(): void {
    for (const c of this.cleanups.splice(0)) c();
  }
}

/** Sends a message to the launcher, when there is one; never throws. */
export function tellParent(msg: FromChild): void {
  if (process.send === undefined || !process.connected) return;
  // With a callback, a broken channel (the launcher was killed) is reported here instead of as
  // an 'error' event that would crash the process; the disconnect handler then stops the run.
  try {
    process.send(msg, undefined, {}, () => undefined);
  } catch {
    /* the launcher is gone */
  }
}
