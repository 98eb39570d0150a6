/**
 * Live tracking from inside a training process: after each epoch, replay what is new in the
 * run's events.jsonl to MLflow, in the background and bounded in time, one sync at a time.
 * Training never waits on the server and never fails because of it: requests time out, the
 * client's circuit breaker makes the calls after a timeout fail at once, and the flush at the
 * end of a run waits at most a few seconds. Whatever is not sent stays in the log for the
 * next sync (`exp run`'s final sync, or `exp sync`).
 */
import { clientsFromEnv, type ClientFor } from '../mlflow/client.js';
import { syncRun, type SyncOutcome } from './sync.js';
import { trackingOf } from './target.js';

/** The longest a finishing run waits for its last events to reach the server. */
export const FLUSH_MS = 2_000;

/**
 * The same for a run trained by a queue worker: no launcher syncs its folder after it (as
 * `exp run` does), and another worker that takes the point over sees only what reached the
 * server, so the run's end (its model, artifacts and FINISHED) must go out now.
 */
export const QUEUE_FLUSH_MS = 30_000;

/** How long a run waits for its last events, by who launched it (its launch settings' launcher). */
export const flushMsFor = (launcher: 'local' | 'queue' | 'slurm' | undefined): number => (launcher === 'queue' ? QUEUE_FLUSH_MS : FLUSH_MS);

export class LiveSync {
  private running: Promise<unknown> = Promise.resolve();
  private queued = false;
  /** What the last sync left to send (its events after its budget ran out). */
  private lastOutcome: SyncOutcome | undefined;
  private readonly enabled: boolean;
  /** One client for the run's life, so its circuit breaker outlives a single sync. */
  private readonly clients: ClientFor;

  constructor(
    private readonly runDir: string,
    private readonly env: NodeJS.ProcessEnv = process.env,
    /** Track to env's MLFLOW_TRACKING_URI only: a queue worker's child (see trackingOf). */
    private readonly pinned = false,
  ) {
    this.enabled = trackingOf(runDir, env, pinned) !== null;
    this.clients = clientsFromEnv(env);
  }

  /** Starts a sync unless one is running; if one is, a single follow-up is queued. */
  kick(): void {
    if (!this.enabled || this.queued) return;
    this.queued = true;
    this.running = this.running
      .then(async () => {
        this.queued = false;
        this.lastOutcome = (await syncRun(this.runDir, this.clients, { env: this.env, pinned: this.pinned, budgetMs: FLUSH_MS })).outcome;
      })
      .catch(() => undefined);
  }

  /**
   * Sends what is left (the end of the run), waiting at most `maxMs`; never throws. Each sync
   * stops starting events after FLUSH_MS, so syncs follow one another until one leaves
   * nothing pending (or fails: the server is down, and the rest waits for `exp sync`).
   */
  async flush(maxMs = FLUSH_MS): Promise<void> {
    if (!this.enabled) return;
    const deadline = Date.now() + maxMs;
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<'timeout'>((r) => {
      timer = setTimeout(() => r('timeout'), maxMs);
    });
    try {
      do {
        this.lastOutcome = undefined;
        this.kick();
        if ((await Promise.race([this.running, timeout])) === 'timeout') return;
      } while (Date.now() < deadline && this.lastOutcome === 'pending');
    } finally {
      clearTimeout(timer);
    }
  }
}
