/**
 * The HTTP layer of the MLflow client: one request with auth, a per-attempt timeout and
 * bounded retries, and typed errors. Built on Node's global fetch (no npm dependency).
 */
import { ExpError, type MlflowErrorCode } from '../errors.js';

/** What went wrong, so callers (the sync sink) can tell "try later" from "fix the input". */
export type MlflowErrorKind =
  | 'http' // the server answered with an error status (see `status`, `errorCode`)
  | 'network' // no answer: connection refused or reset, DNS
  | 'timeout' // no answer within timeoutMs
  | 'validation' // refused by the client before sending (MLflow would reject or silently truncate it)
  | 'config' // the client cannot be used as configured (bad URI, artifact root not served by the proxy)
  | 'conflict' // the server holds a record that disagrees with this one (a copied run folder)
  | 'experiment_deleted'; // the experiment written to is deleted (in the server's trash): restore it or use another

/** Every failure of the MLflow client. `errorCode` is MLflow's own (e.g. RESOURCE_ALREADY_EXISTS) for 'http'. */
export class MlflowError extends ExpError<MlflowErrorCode> {
  override readonly name = 'MlflowError';
  readonly kind: MlflowErrorKind;
  /** HTTP status for kind 'http'; undefined otherwise. */
  readonly status: number | undefined;
  /** MLflow's error_code for 'http' (or HTTP_<status> when the body had none); for others, the kind in capitals. */
  readonly errorCode: string;
  /** The route called, e.g. 'runs/log-batch' or 'mlflow-artifacts/artifacts/1/abc/artifacts/a.png'. */
  readonly route: string;

  constructor(init: { code: MlflowErrorCode; route: string; message: string; status?: number; errorCode?: string; cause?: unknown; fix?: string }) {
    // The kind is the code without its prefix: MLFLOW_EXPERIMENT_DELETED -> 'experiment_deleted'.
    const kind = init.code.slice('MLFLOW_'.length).toLowerCase() as MlflowErrorKind;
    super({
      code: init.code,
      message: `MLflow ${init.route}: ${init.message}${init.status === undefined ? '' : ` (HTTP ${init.status}${init.errorCode ? ` ${init.errorCode}` : ''})`}`,
      exit: kind === 'validation' || kind === 'config' ? 'invalid' : 'failed',
      fix: init.fix,
      cause: init.cause,
    });
    this.kind = kind;
    this.route = init.route;
    this.status = init.status;
    this.errorCode = init.errorCode ?? kind.toUpperCase();
  }

  /** True for failures that a later attempt may not see: network, timeout, 429 and 5xx. */
  get retryable(): boolean {
    return this.kind === 'network' || this.kind === 'timeout' || (this.kind === 'http' && isRetryableStatus(this.status ?? 0));
  }
}

const isRetryableStatus = (s: number): boolean => s === 429 || s >= 500;

export interface HttpOptions {
  /** Base URL of the tracking server, without a trailing slash, e.g. http://127.0.0.1:5000. */
  base: string;
  /** Authorization header value, if any. */
  authorization: string | undefined;
  timeoutMs: number;
  /** Retries after the first attempt (so at most retries + 1 attempts). */
  retries: number;
  /** First backoff delay; doubles per retry, with jitter, capped at maxBackoffMs. */
  backoffMs: number;
  maxBackoffMs: number;
}

export interface RequestInit {
  method: 'GET' | 'POST' | 'PUT' | 'PATCH' | 'DELETE';
  /** Path below /api/2.0/, e.g. 'mlflow/runs/get' or 'mlflow-artifacts/artifacts/1/x'; already URL-encoded. */
  path: string;
  query?: Record<string, string | number | undefined>;
  json?: unknown;
  bytes?: Uint8Array;
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** Delay before retry `attempt` (1-based): exponential with full jitter in [d/2, d]; Retry-After (seconds) wins when given; at most maxBackoffMs. */
export function retryDelay(o: Pick<HttpOptions, 'backoffMs' | 'maxBackoffMs'>, attempt: number, retryAfter: string | null): number {
  const secs = retryAfter === null ? NaN : Number(retryAfter);
  if (Number.isFinite(secs) && secs >= 0) return Math.min(secs * 1000, o.maxBackoffMs);
  const d = Math.min(o.backoffMs * 2 ** (attempt - 1), o.maxBackoffMs);
  return d / 2 + Math.random() * (d / 2);
}

function routeOf(path: string): string {
  return decodeURIComponent(path.replace(/^mlflow\//, ''));
}

async function errorFromResponse(res: Response, route: string): Promise<MlflowError> {
  const text = await res.text().catch(() => '');
  let errorCode: string | undefined;
  let message = text.trim().slice(0, 500) || res.statusText;
  try {
    const body = JSON.parse(text) as { error_code?: unknown; message?: unknown };
    if (typeof body.error_code === 'string') errorCode = body.error_code;
    if (typeof body.message === 'string') message = body.message.length > 1000 ? `${body.message.slice(0, 1000)}…` : body.message;
  } catch {
    /* not JSON: a proxy's HTML page, say */
  }
  return new MlflowError({ code: 'MLFLOW_HTTP', route, status: res.status, errorCode: errorCode ?? `HTTP_${res.status}`, message });
}

/**
 * Sends one request, retrying network errors, timeouts, 429 and 5xx up to `retries` times.
 * Returns the response body as bytes (the caller parses JSON). Note that a retried POST may
 * apply twice when the first attempt reached the server but its answer was lost.
 */
export async function send(o: HttpOptions, init: RequestInit): Promise<Uint8Array> {
  const url = new URL(`${o.base}/api/2.0/${init.path}`);
  for (const [k, v] of Object.entries(init.query ?? {})) if (v !== undefined) url.searchParams.set(k, String(v));
  const route = routeOf(init.path);
  const headers: Record<string, string> = { 'User-Agent': 'exp-mlflow-client', Accept: 'application/json' };
  if (o.authorization) headers.Authorization = o.authorization;
  let body: Uint8Array<ArrayBuffer> | string | undefined;
  if (init.json !== undefined) {
    headers['Content-Type'] = 'application/json';
    body = JSON.stringify(init.json);
  }
  if (init.bytes !== undefined) {
    headers['Content-Type'] = 'application/octet-stream';
    body = new Uint8Array(init.bytes);
  } // a copy fetch's types accept

  // A large upload gets time for its bytes too (at 1 MB/s at worst), beyond the answer's timeout.
  const timeoutMs = o.timeoutMs + (init.bytes ? Math.ceil(init.bytes.byteLength / 1000) : 0);
  for (let attempt = 0; ; attempt++) {
    let failure: MlflowError;
    let retryAfter: string | null = null;
    try {
      const res = await fetch(url, { method: init.method, headers, body, signal: AbortSignal.timeout(timeoutMs) });
      if (res.ok) return new Uint8Array(await res.arrayBuffer());
      retryAfter = res.headers.get('retry-after');
      failure = await errorFromResponse(res, route);
    } catch (e) {
      const timeout = e instanceof Error && (e.name === 'TimeoutError' || e.name === 'AbortError');
      const cause = e instanceof Error && e.cause instanceof Error ? e.cause : e;
      failure = new MlflowError({
        code: timeout ? 'MLFLOW_TIMEOUT' : 'MLFLOW_NETWORK',
        route,
        cause: e,
        message: timeout
          ? `no answer within ${timeoutMs} ms from ${o.base}`
          : `cannot reach ${o.base}: ${cause instanceof Error ? cause.message : String(cause)}`,
      });
    }
    if (!failure.retryable || attempt >= o.retries) throw failure;
    await sleep(retryDelay(o, attempt + 1, retryAfter));
  }
}
