/**
 * Live tracking from inside a training process: after each epoch, replay what is new in the
 * run's events.jsonl to MLflow, in the background and bounded in time, one sync at a time.
 * Training never waits on the server and never fails because of it: requests time out, the
 * client's circuit breaker makes the calls after a timeout fail at once, and the flush at the
 * end of a run waits at most a few seconds. Whatever is not sent stays in the log for the
 * next sync (`exp run`'s final sync, or `exp sync`).
 */
import { clientsFromEnv, type ClientFor } from '../mlflow/client.js';
import { syncRun, trackingOf } from './sync.js';

/** The longest a finishing run waits for its last events to reach the server. */
export const FLUSH_MS = 2_000;

export class LiveSync {
  private running: Promise<unknown> = Promise.resolve();
  private queued = false;
  private readonly enabled: boolean;
  /** One client for the run's life, so its circuit breaker outlives a single sync. */
  private readonly clients: ClientFor;

  constructor(
    private readonly runDir: string,
    private readonly env: NodeJS.ProcessEnv = process.env,
  ) {
    this.enabled = trackingOf(runDir, env) !== null;
    this.clients = clientsFromEnv(env);
  }

  /** Starts a sync unless one is running; if one is, a single follow-up is queued. */
  kick(): void {
    if (!this.enabled || this.queued) return;
    this.queued = true;
    this.running = this.running
      .then(async () => {
        this.queued = false;
        await syncRun(this.runDir, this.clients, { env: this.env, budgetMs: FLUSH_MS });
      })
      .catch(() => undefined);
  }

  /** Sends what is left (the end of the run), waiting at most `maxMs`; never throws. */
  async flush(maxMs = FLUSH_MS): Promise<void> {
    if (!this.enabled) return;
    this.kick();
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([
      this.running,
      new Promise((r) => {
        timer = setTimeout(r, maxMs);
      }),
    ]);
    clearTimeout(timer);
  }
}
