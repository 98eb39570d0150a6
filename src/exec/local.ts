/**
 * Runs a sweep's folders on this machine: up to `workers` at once, each in its own `exp train`
 * child (a crash, leak or kill in one cannot take the sweep down, and the child is exactly
 * what a queue worker or a resume runs), each given its own GPU with `--gpus`. A light
 * parent: it never loads TensorFlow.js. Finished points are skipped, so running the same file
 * again resumes the sweep; failed points are re-run only when asked (`--retry-failed`).
 */
import { basename } from 'node:path';
import { readRunRecord, runFolderBusy } from '../store/run.js';
import { describeExit } from '../store/status.js';
import { isFinished, type ProcessExit, type RunStatus } from '../store/types.js';
import type { SweepDisplay } from './display.js';
import { launchPoint, Stopper, type PointEnd } from './launch.js';
import type { SweepPruner } from './prune.js';

export type FolderOutcome = RunStatus | 'skipped' | 'busy';

export interface FolderResult {
  dir: string;
  status: FolderOutcome;
  exit: ProcessExit | null;
  seconds: number;
  /** Why it was skipped, or what the launcher saw. */
  note?: string;
}

export interface LocalOptions {
  /** Points trained at once; default 1 (or one per GPU with `gpus`). */
  workers?: number;
  /** GPU ids; each child gets one as CUDA_VISIBLE_DEVICES, round-robin over the workers. */
  gpus?: readonly string[];
  /** Also re-train points that ended (completed, failed, pruned), from scratch. */
  force?: boolean;
  /** Also re-run points whose last attempt failed (from their last checkpoint). */
  retryFailed?: boolean;
  /** Start no new point after this many failures. */
  maxFailures?: number;
  env: NodeJS.ProcessEnv;
  display: SweepDisplay;
  /** Show each child's own output (only sensible with one worker). */
  childOutput: 'inherit' | 'quiet';
  pruner?: SweepPruner;
  /** The metric the display's "best so far" follows. */
  metric?: string;
  /** Once the given folders are started: the next folder to train (an adaptive study's next proposal), or undefined when there is none. */
  next?: () => Promise<string | undefined>;
  /** Asked before each start, with the folders this run started so far: a reason to start no more points (a sweep budget spent), or undefined. */
  mayStart?: (started: readonly string[]) => string | undefined;
}

/** Why a folder is not trained this time, or undefined to train it. */
export function skipReason(dir: string, opts: Pick<LocalOptions, 'force' | 'retryFailed'>): { status: FolderOutcome; note: string } | undefined {
  const busy = runFolderBusy(dir);
  if (busy.busy) return { status: 'busy', note: `already running (${busy.owner})` };
  const status = readRunRecord(dir)?.status;
  if (opts.force) return undefined;
  if (isFinished(status)) return { status: 'skipped', note: `${status} before (--force trains it again)` };
  if (status === 'failed' && !opts.retryFailed) return { status: 'skipped', note: 'failed before (--retry-failed runs it again)' };
  return undefined;
}

/** Why a point that was not started this time was not. */
const notStarted = (stopped: boolean, spent: string | undefined): string =>
  stopped ? 'not started: the sweep was stopped' : spent ? `not started: ${spent}` : 'not started: --max-failures reached';

/** One `exp run`'s lanes: up to `workers` points at a time, each through launchPoint(). */
class LocalLanes {
  readonly results = new Map<string, FolderResult>();
  readonly queue: string[] = [];
  private failures = 0;
  private slot = 0;
  readonly stopper: Stopper;
  /** Folders an adaptive study added (opts.next), and every folder this run started. */
  readonly added: string[] = [];
  private readonly started: string[] = [];
  /** Why the sweep's budget stopped it starting points. */
  spent: string | undefined;

  constructor(private readonly opts: LocalOptions) {
    this.stopper = new Stopper((sig, n) => {
      if (n === 1) opts.display.note(`${sig}: stopping: finishing the current batch, press Ctrl-C again to abort`);
      else if (n === 2) opts.display.note(`${sig} again: stopping now`);
    });
  }

  /** Skips what need not train (shown as such), queues the rest. */
  admit(dirs: readonly string[]): void {
    for (const dir of dirs) {
      const skip = skipReason(dir, this.opts);
      if (skip) this.results.set(dir, { dir, status: skip.status, exit: null, seconds: 0, note: skip.note });
      else this.queue.push(dir);
      this.opts.display.add(basename(dir), skip?.status);
    }
  }

  /** One lane: trains queued points one after another until none is left, the sweep is stopped or --max-failures is reached. */
  async lane(): Promise<void> {
    for (;;) {
      const limited = this.opts.maxFailures !== undefined && this.failures >= this.opts.maxFailures;
      const dir = this.stopper.stopping || limited ? undefined : await this.take();
      if (!dir) return;
      await this.train(dir);
    }
  }

  /** The next folder to start: queued, else the study's next proposal; none once the budget is spent. */
  private async take(): Promise<string | undefined> {
    const { opts } = this;
    if (this.queue.length === 0 && !opts.next) return undefined; // nothing left to start: no budget to spend
    if (!this.spent && opts.mayStart) {
      this.spent = opts.mayStart(this.started);
      if (this.spent) opts.display.note(`${this.spent}: starting no new point`);
    }
    if (this.spent) return undefined;
    const queued = this.queue.shift();
    const dir = queued ?? (await opts.next?.());
    if (!dir) return undefined;
    this.started.push(dir);
    if (!queued) {
      this.added.push(dir);
      opts.display.add(basename(dir));
    }
    return dir;
  }

  private async train(dir: string): Promise<void> {
    const { opts } = this;
    const gpu = opts.gpus?.length ? opts.gpus[this.slot++ % opts.gpus.length] : undefined;
    const name = basename(dir);
    let epochs: number | undefined;
    const launched = launchPoint({
      dir,
      point: name,
      env: opts.env,
      settings: { launcher: 'local', uploadCheckpoints: false, pinTracking: false },
      ...(gpu !== undefined ? { gpu } : {}),
      ...(opts.force ? { force: true } : {}),
      output: opts.childOutput,
      ...(opts.pruner ? { pruner: opts.pruner } : {}),
      stopper: this.stopper,
      onMessage: (m) => {
        if (m.type === 'started') epochs = m.epochs;
        else if (m.type === 'progress') opts.display.progress(name, m.epoch, epochs, m.batch, m.batches, m.seconds > 0 ? m.images / m.seconds : 0);
        else if (m.type === 'epoch') opts.display.epoch(name, m.epoch, opts.metric ? m.metrics[opts.metric] : undefined);
      },
    });
    opts.display.started(name, gpu !== undefined ? `GPU ${gpu}` : undefined);
    this.ended(dir, await launched);
  }

  /** Records and shows how a point ended. */
  private ended(dir: string, end: PointEnd): void {
    const { opts } = this;
    const { status, exit, seconds } = end;
    if (status === 'failed') this.failures++;
    const rec = readRunRecord(dir);
    const stopped = this.stopper.stopping;
    // A run.json of an earlier attempt (or none) says nothing about how this one ended.
    const reason = rec && rec.pid === end.pid ? rec.reason : status === 'killed' ? 'stopped before it started training' : describeExit(exit, stopped);
    const note = status === 'busy' ? 'another process took it first' : reason && status !== 'completed' ? reason : undefined;
    this.results.set(dir, { dir, status, exit, seconds, ...(note !== undefined ? { note } : {}) });
    const shown = status === 'busy' ? 'busy' : status === 'planned' || status === 'running' ? 'failed' : status;
    opts.display.ended(basename(dir), shown, seconds, status === 'completed' ? undefined : note);
    if (opts.maxFailures !== undefined && this.failures === opts.maxFailures && this.queue.length > 0) {
      const n = this.failures;
      opts.display.note(`${n} failure${n === 1 ? '' : 's'} (--max-failures ${opts.maxFailures}): starting no new point; ${this.queue.length} left queued`);
    }
  }
}

/** Trains the folders; resolves when every started child has ended. */
export async function runFolders(dirs: readonly string[], opts: LocalOptions): Promise<FolderResult[]> {
  const lanes = new LocalLanes(opts);
  lanes.admit(dirs);
  const workers = Math.max(1, opts.workers ?? (opts.gpus?.length || 1));
  lanes.stopper.install();
  try {
    await Promise.all(Array.from({ length: workers }, () => lanes.lane()));
  } finally {
    lanes.stopper.uninstall();
    opts.display.close();
  }
  for (const dir of lanes.queue)
    lanes.results.set(dir, { dir, status: 'skipped', exit: null, seconds: 0, note: notStarted(lanes.stopper.stopping, lanes.spent) });
  return [...dirs, ...lanes.added].map((d) => lanes.results.get(d)!);
}
