/**
 * Live tracking from inside a training process: after each epoch, replay what is new in the
 * run's events.jsonl to MLflow, in the background and bounded in time, one sync at a time.
 * Training never waits on the server and never fails because of it; whatever is not sent
 * stays in the log for the next sync (here, `exp run`'s final sync, or `exp sync`).
 */
import { syncRun, clientsFromEnv, trackingOf } from './sync.js';

export class LiveSync {
  private running: Promise<unknown> = Promise.resolve();
  private queued = false;
  private readonly enabled: boolean;

  constructor(private readonly runDir: string, private readonly env: NodeJS.ProcessEnv = process.env) {
    this.enabled = trackingOf(runDir, env) !== null;
  }

  /** Starts a sync unless one is running; if one is, a single follow-up is queued. */
  kick(): void {
    if (!this.enabled || this.queued) return;
    this.queued = true;
    this.running = this.running.then(async () => {
      this.queued = false;
      await syncRun(this.runDir, clientsFromEnv(this.env), { env: this.env, budgetMs: 5000 });
    }).catch(() => undefined);
  }

  /** Sends what is left (the end of the run), then returns; never throws. */
  async flush(): Promise<void> {
    if (!this.enabled) return;
    this.kick();
    await this.running;
  }
}
