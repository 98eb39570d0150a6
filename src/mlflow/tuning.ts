/**
 * How long MLflow clients wait and how often they retry, owned here: the client's defaults
 * and the presets its callers use (the sink, exp run's final sync). Tune a caller here, not
 * where it makes its client.
 */

/** Per-request timing for a client: how long to wait for an answer, and how often to retry. */
export interface ClientTuning {
  timeoutMs: number;
  retries: number;
  backoffMs: number;
  breakerMs?: number;
}

/**
 * A client's defaults (30 s per attempt, 4 retries from 250 ms doubling up to 10 s; after a
 * request gets no answer, the circuit breaker fails every request of the next 30 s at once):
 * for callers that need the server's answer to go on (exp reproduce from MLflow, a queue worker).
 */
export const DEFAULT_TUNING: Required<ClientTuning> & { maxBackoffMs: number } = {
  timeoutMs: 30_000,
  retries: 4,
  backoffMs: 250,
  breakerMs: 30_000,
  maxBackoffMs: 10_000,
};

/**
 * The tuning of tracking (the sink, exp tag, exp rm and exp gc): a sink waits for a slow server
 * a bounded time (about 25 s per call at worst), and the client's circuit breaker makes every
 * call after a timeout fail at once.
 */
export const SINK_TUNING: ClientTuning = { timeoutMs: 10_000, retries: 1, backoffMs: 500 };

/**
 * exp run's sync once its runs end: short and without retries. A healthy server answers in
 * milliseconds, and a sweep that just ended must not wait long on one that does not (exp sync
 * retries, exp status shows what is left).
 */
export const FINAL_SYNC_TUNING: ClientTuning = { timeoutMs: 5_000, retries: 0, backoffMs: 250 };
