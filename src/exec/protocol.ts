/**
 * The messages between a launcher (exp run, a queue worker) and its `exp train` child, over
 * the child's IPC channel. Plain data, so launchers need nothing from the trainer's modules.
 */

/** Where training is inside an epoch. */
export interface BatchProgress {
  epoch: number;
  batch: number;
  batches: number;
  images: number;
  seconds: number;
}

/** Child to launcher. */
export type FromChild =
  | { type: 'started'; backend: string; epochs: number; done: number }
  | ({ type: 'progress' } & BatchProgress)
  | { type: 'epoch'; epoch: number; metrics: Record<string, number>; improved: boolean };

/** Launcher to child: stop at the next batch as killed, or as pruned (the sweep's early-termination rule). */
export type ToChild = { type: 'stop'; reason: string } | { type: 'prune'; reason: string };
