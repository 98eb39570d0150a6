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

/**
 * Launcher to child: stop at the next batch as killed, or as pruned (the sweep's early-termination rule);
 * go on past `epoch`, a rung the child waits at (EXP_HOLD_EPOCHS) for the scheduler's verdict.
 */
export type ToChild = { type: 'stop'; reason: string } | { type: 'prune'; reason: string } | { type: 'go'; epoch: number; note?: string };

/** The launcher's environment variable naming the epochs a child waits at for a verdict (ASHA rungs): "1,2,4". */
export const HOLD_EPOCHS_VAR = 'EXP_HOLD_EPOCHS';

/** The epochs of EXP_HOLD_EPOCHS; a malformed value (exp writes it, never a user) holds nowhere. */
export function holdEpochsOf(text: string | undefined): Set<number> {
  if (!text || !/^\d{1,6}(,\d{1,6}){0,63}$/.test(text)) return new Set();
  return new Set(text.split(',').map(Number));
}
