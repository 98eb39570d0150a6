/**
 * One sweep point trained in its `exp train` child: the steps every launcher shares (exp run's
 * local workers, queue workers, and next other launchers such as Slurm's): the child's
 * environment (the launch settings of exec/protocol.ts, its GPU), the spawn, the relay of its
 * messages, the sweep scheduler's verdicts at each epoch, and how it ended (the child's 75:
 * busy in another process; a child that died without recording its end is recorded here).
 * Stop signals belong to the launcher, not to one point: a Stopper reaches every running child.
 */
import { readRunConfig } from '../store/run.js';
import { settleAfterExit } from '../store/status.js';
import type { ProcessExit, RunStatus } from '../store/types.js';
import { spawnTrain, type TrainChild } from './child.js';
import type { SweepPruner } from './prune.js';
import { EXIT, launchEnv, type FromChild, type LaunchSettings } from './protocol.js';

/** A launcher's stop signals: Ctrl-C or SIGTERM stops every running child at its next batch, a second one at once. */
export class Stopper {
  /** How many stop signals came. */
  count = 0;
  readonly children = new Set<TrainChild>();
  private readonly onSignal = (sig: NodeJS.Signals): void => {
    this.count++;
    this.onStop(sig, this.count);
    for (const c of this.children) c.interrupt();
  };

  /** `onStop` tells the user (and stops taking work) on each signal. */
  constructor(private readonly onStop: (sig: NodeJS.Signals, count: number) => void) {}

  get stopping(): boolean {
    return this.count > 0;
  }

  install(): this {
    process.on('SIGINT', this.onSignal);
    process.on('SIGTERM', this.onSignal);
    return this;
  }

  uninstall(): void {
    process.off('SIGINT', this.onSignal);
    process.off('SIGTERM', this.onSignal);
  }
}

/**
 * The rungs the point's child waits at, from its configured epochs; none when config.yaml cannot
 * be read (the child reports the damaged file itself).
 */
export function holdAt(pruner: SweepPruner | undefined, point: string, dir: string): number[] {
  if (!pruner) return [];
  try {
    return pruner.holdEpochs(point, readRunConfig(dir).training.epochs);
  } catch {
    return [];
  }
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

export interface PointLaunch {
  dir: string;
  /** The point's name (its folder's): the scheduler's key for it. */
  point: string;
  /** The launcher's environment; the child gets it plus the launch settings and its GPU. */
  env: NodeJS.ProcessEnv;
  /** Who launches it and how; the rungs to wait at come from `pruner`. */
  settings: Omit<LaunchSettings, 'holdEpochs'>;
  /** The GPU it gets (CUDA_VISIBLE_DEVICES). */
  gpu?: string;
  /** Train from scratch (exp train --force). */
  force?: boolean;
  output: 'inherit' | 'quiet';
  pruner?: SweepPruner;
  stopper: Stopper;
  /** Every message of the child (started, progress, epochs), for a display or a queue job's progress. */
  onMessage?: (m: FromChild) => void;
}

export interface PointEnd {
  /** How it ended; busy: another live process holds the folder (the child exited 75). */
  status: RunStatus | 'busy';
  exit: ProcessExit;
  seconds: number;
  /** The child's: run.json's pid tells whether its record is this attempt's. */
  pid: number | undefined;
}

/** Trains one point in its child; resolves when the child has exited and its end is recorded. */
export async function launchPoint(p: PointLaunch): Promise<PointEnd> {
  const holdEpochs = holdAt(p.pruner, p.point, p.dir);
  const hold = new Set(holdEpochs);
  const env: NodeJS.ProcessEnv = {
    ...p.env,
    ...launchEnv({ ...p.settings, holdEpochs }),
    ...(p.gpu !== undefined ? { CUDA_VISIBLE_DEVICES: p.gpu } : {}),
  };
  const t0 = performance.now();
  const child = spawnTrain(p.dir, {
    env,
    force: p.force,
    output: p.output,
    onMessage: (m) => {
      p.onMessage?.(m);
      if (m.type === 'epoch' && p.pruner) judgeEpoch(p.pruner, child, hold, p.point, m.epoch, m.metrics);
    },
  });
  p.stopper.children.add(child);
  if (p.stopper.stopping) child.interrupt(); // a signal came while the point was being set up
  const exit = await child.exited;
  p.stopper.children.delete(child);
  const seconds = (performance.now() - t0) / 1000;
  const status = exit.code === EXIT.busy ? 'busy' : settleAfterExit(p.dir, exit, p.stopper.stopping, child.pid);
  return { status, exit, seconds, pid: child.pid };
}
