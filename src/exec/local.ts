/**
 * Runs a sweep's folders on this machine: up to `workers` at once, each in its own `exp train`
 * child (a crash, leak or kill in one cannot take the sweep down, and the child is exactly
 * what a queue worker or a resume runs), each given its own GPU with `--gpus`. A light
 * parent: it never loads TensorFlow.js. Finished points are skipped, so running the same file
 * again resumes the sweep; failed points are re-run only when asked (`--retry-failed`).
 */
import { basename } from 'node:path';
import { readRunConfig, readRunRecord, runFolderBusy } from '../store/run.js';
import { describeExit, EXIT_BUSY, settleAfterExit } from '../store/status.js';
import type { ProcessExit, RunStatus } from '../store/types.js';
import { spawnTrain, type TrainChild } from './child.js';
import type { SweepDisplay } from './display.js';
import type { SweepPruner } from './prune.js';
import { HOLD_EPOCHS_VAR } from './protocol.js';

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
  if (status === 'completed' || status === 'pruned') return { status: 'skipped', note: `${status} before (--force trains it again)` };
  if (status === 'failed' && !opts.retryFailed) return { status: 'skipped', note: 'failed before (--retry-failed runs it again)' };
  return undefined;
}

/** The rungs the point's child waits at (set in its environment), from its configured epochs. */
export function holdAt(pruner: SweepPruner | undefined, point: string, dir: string, env: NodeJS.ProcessEnv): Set<number> {
  let epochs = 0;
  try {
    epochs = readRunConfig(dir).training.epochs;
  } catch {
    return new Set(); // the child reports the damaged config.yaml itself
  }
  const hold = pruner?.holdEpochs(point, epochs) ?? [];
  if (hold.length > 0) env[HOLD_EPOCHS_VAR] = hold.join(',');
  else delete env[HOLD_EPOCHS_VAR];
  return new Set(hold);
}

/**
 * The scheduler's verdict on an epoch a child reported: prune it, or (at a rung it waits at) let
 * it go on with the decision's note. A verdict that cannot be reached (a store or Redis error)
 * lets a waiting child go on: no pruning is better than a point held forever.
 */
export function judgeEpoch(
  pruner: SweepPruner,
  child: TrainChild,
  hold: ReadonlySet<number>,
  point: string,
  epoch: number,
  metrics: Readonly<Record<string, number>>,
): void {
  void pruner.decide(point, epoch, metrics).then(
    (j) => {
      if (j.prune) child.prune(j.prune);
      else if (hold.has(epoch)) child.go(epoch, j.note);
    },
    () => {
      if (hold.has(epoch)) child.go(epoch);
    },
  );
}

/** Trains the folders; resolves when every started child has ended. */
export async function runFolders(dirs: readonly string[], opts: LocalOptions): Promise<FolderResult[]> {
  const results = new Map<string, FolderResult>();
  const workers = Math.max(1, opts.workers ?? (opts.gpus?.length || 1));
  const queue: string[] = [];
  for (const dir of dirs) {
    const skip = skipReason(dir, opts);
    if (skip) {
      results.set(dir, { dir, status: skip.status, exit: null, seconds: 0, note: skip.note });
      opts.display.add(basename(dir), skip.status);
    } else {
      queue.push(dir);
      opts.display.add(basename(dir));
    }
  }
  const running = new Set<TrainChild>();
  let failures = 0;
  let stopping = 0;
  const onSignal = (sig: NodeJS.Signals): void => {
    stopping++;
    if (stopping === 1) opts.display.note(`${sig}: stopping: finishing the current batch, press Ctrl-C again to abort`);
    else if (stopping === 2) opts.display.note(`${sig} again: stopping now`);
    for (const c of running) c.interrupt();
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  let slot = 0;
  const added: string[] = [];
  const started: string[] = [];
  let spent: string | undefined;
  const take = async (): Promise<string | undefined> => {
    if (queue.length === 0 && !opts.next) return undefined; // nothing left to start: no budget to spend
    spent ??= opts.mayStart?.(started);
    if (spent) {
      if (queue.length > 0 || opts.next) opts.display.note(`${spent}: starting no new point`);
      opts.mayStart = undefined; // said once
      return undefined;
    }
    const dir = queue.shift() ?? (await opts.next?.());
    if (dir) started.push(dir);
    if (dir && !dirs.includes(dir) && !added.includes(dir)) {
      added.push(dir);
      opts.display.add(basename(dir));
    }
    return dir;
  };
  const startNext = async (): Promise<void> => {
    for (;;) {
      const limited = opts.maxFailures !== undefined && failures >= opts.maxFailures;
      const dir = stopping || limited ? undefined : await take();
      if (!dir) return;
      const gpu = opts.gpus?.length ? opts.gpus[slot++ % opts.gpus.length] : undefined;
      const name = basename(dir);
      const t0 = performance.now();
      let epochs: number | undefined;
      const env: NodeJS.ProcessEnv = { ...opts.env, EXP_LAUNCHER: 'local', ...(gpu !== undefined ? { CUDA_VISIBLE_DEVICES: gpu } : {}) };
      const hold = holdAt(opts.pruner, name, dir, env);
      const child = spawnTrain(dir, {
        env,
        force: opts.force,
        output: opts.childOutput,
        onMessage: (m) => {
          if (m.type === 'started') epochs = m.epochs;
          else if (m.type === 'progress') opts.display.progress(name, m.epoch, epochs, m.batch, m.batches, m.seconds > 0 ? m.images / m.seconds : 0);
          else if (m.type === 'epoch') {
            opts.display.epoch(name, m.epoch, opts.metric ? m.metrics[opts.metric] : undefined);
            if (opts.pruner) judgeEpoch(opts.pruner, child, hold, name, m.epoch, m.metrics);
          }
        },
      });
      running.add(child);
      opts.display.started(name, gpu !== undefined ? `GPU ${gpu}` : undefined);
      const exit = await child.exited;
      running.delete(child);
      const seconds = (performance.now() - t0) / 1000;
      const status: FolderOutcome = exit.code === EXIT_BUSY ? 'busy' : settleAfterExit(dir, exit, stopping > 0, child.pid);
      if (status === 'failed') failures++;
      const rec = readRunRecord(dir);
      // A run.json of an earlier attempt (or none) says nothing about how this one ended.
      const reason = rec && rec.pid === child.pid ? rec.reason : status === 'killed' ? 'stopped before it started training' : describeExit(exit, stopping > 0);
      results.set(dir, {
        dir,
        status,
        exit,
        seconds,
        ...(status === 'busy' ? { note: 'another process took it first' } : reason && status !== 'completed' ? { note: reason } : {}),
      });
      opts.display.ended(
        name,
        status === 'busy' ? 'busy' : status === 'planned' || status === 'running' ? 'failed' : status,
        seconds,
        status === 'completed' ? undefined : results.get(dir)!.note,
      );
      if (opts.maxFailures !== undefined && failures === opts.maxFailures && queue.length > 0) {
        opts.display.note(
          `${failures} failure${failures === 1 ? '' : 's'} (--max-failures ${opts.maxFailures}): starting no new point; ${queue.length} left queued`,
        );
      }
    }
  };
  try {
    await Promise.all(Array.from({ length: workers }, () => startNext()));
  } finally {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
    opts.display.close();
  }
  for (const dir of queue)
    results.set(dir, {
      dir,
      status: 'skipped',
      exit: null,
      seconds: 0,
      note: stopping ? 'not started: the sweep was stopped' : spent ? `not started: ${spent}` : 'not started: --max-failures reached',
    });
  return [...dirs, ...added].map((d) => results.get(d)!);
}
