/**
 * Sweeps on a job queue (BullMQ on Redis): the producer side. `exp run FILE --queue URL`
 * writes the run folders as usual, then adds one job per point; any number of `exp worker`
 * processes, on any machines, take the jobs (see worker.ts). A job carries everything a
 * worker needs to write the point's run folder itself (the resolved config, the point's
 * identity, the sweep's experiment), so workers need none of the submitter's files, only the
 * data at the same path.
 *
 * A job's id is the sweep id and the run key, so adding the same sweep twice adds nothing;
 * who owns a point is BullMQ's business (a lock the worker renews, and the stalled-job check
 * that hands a dead worker's job to another). Secrets in the Redis URL never reach logs, run
 * files or MLflow: the URL is shown without its password and kept nowhere.
 */
import { hostname } from 'node:os';
import { Queue, type ConnectionOptions, type Job } from 'bullmq';
import { Redis } from 'ioredis';
import { ExpError } from '../errors.js';
import type { PointSpec } from '../store/sweep.js';
import type { EarlyStopRule } from './prune.js';

export const QUEUE_NAME = 'exp-sweeps';

/** Where the queue is: ioredis options, and the URL as it may be shown (no password). */
export interface QueueConn {
  connection: ConnectionOptions;
  shown: string;
}

/** The largest database index Redis accepts at all (its `databases` setting is an int). */
const MAX_DB = 2 ** 31 - 1;

/** Parses redis://[user:password@]host[:port][/db] and rediss:// (TLS). */
export function parseQueueUrl(url: string): QueueConn {
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    u = new URL('invalid:');
  }
  const bad = (why: string): never => {
    throw new ExpError({
      code: 'QUEUE_URL',
      message: `--queue '${redact(url)}' ${why}`,
      fix: 'give redis://[user:password@]host[:port][/db], or rediss://... for TLS',
    });
  };
  if (u.protocol !== 'redis:' && u.protocol !== 'rediss:') bad('is not a redis:// or rediss:// URL');
  if (!u.hostname) bad('has no host');
  const dbText = u.pathname && u.pathname !== '/' ? u.pathname.slice(1) : '0';
  // Redis numbers its databases 0, 1, ... (16 unless its `databases` setting says more); checkReachable asks the server for the one named.
  if (!/^\d{1,10}$/.test(dbText) || Number(dbText) > MAX_DB)
    bad(`names database '${dbText.slice(0, 40)}', which is not a Redis database number (0, 1, 2, ...)`);
  if (u.search || u.hash) bad('has a query or fragment (?... or #...), which exp does not read: the database is the path, e.g. /1');
  const db = Number(dbText);
  const port = u.port ? Number(u.port) : 6379;
  return {
    connection: {
      host: u.hostname.replace(/^\[|\]$/g, ''),
      port,
      db,
      ...(u.username ? { username: decodeURIComponent(u.username) } : {}),
      ...(u.password ? { password: decodeURIComponent(u.password) } : {}),
      ...(u.protocol === 'rediss:' ? { tls: { servername: u.hostname } } : {}),
      // BullMQ's workers need commands that wait for Redis rather than fail after N retries.
      maxRetriesPerRequest: null,
      // A Redis that is down must not hang a command forever with no word.
      connectTimeout: 10_000,
    },
    shown: redact(url),
  };
}

/** The URL with any password replaced, for messages and logs. */
export const redact = (url: string): string =>
  url.replace(/^(rediss?:\/\/)([^@/]*)@/i, (_m, s: string, cred: string) => `${s}${cred.includes(':') ? `${cred.split(':')[0]}:***` : '***'}@`);

/** What a job carries. */
export interface JobData {
  version: 1;
  spec: PointSpec;
  /** The tracking server the submitter resolved (no credentials: each worker uses its own). */
  tracking: { uri: string; experiment: string } | null;
  /** The sweep's early-termination rule, if any, and the metric it follows by default. */
  earlyStop: { rule: EarlyStopRule; monitor: string } | null;
  submitted: { by: string; at: string };
}

/** The job id of a point: its sweep and run key, so the same sweep enqueued twice adds nothing. */
export const jobIdOf = (spec: Pick<PointSpec, 'sweep' | 'entry'>): string => `${spec.sweep}.${spec.entry.key}`;

/**
 * Opens the queue. Connection errors are handled here: unhandled, ioredis would print the
 * error with the command that failed, and an AUTH command's arguments are the password.
 */
export function openQueue(conn: QueueConn): Queue<JobData> {
  const queue = new Queue<JobData>(QUEUE_NAME, { connection: conn.connection });
  queue.on('error', () => undefined); // reported by checkReachable, or by the command that fails
  return queue;
}

/**
 * Fails fast with a coded error when Redis cannot be reached or refuses the password, before
 * BullMQ opens its own connections (which would retry forever, and whose unhandled errors
 * print the AUTH command, password included). Uses a plain ioredis client that gives up.
 */
export async function checkReachable(conn: QueueConn, timeoutMs = 15_000): Promise<void> {
  const probe = new Redis({
    ...(conn.connection as object),
    // ioredis selects the URL's database on connect and, when Redis refuses it, goes on in database 0 with no word: select it below instead.
    db: 0,
    lazyConnect: true,
    maxRetriesPerRequest: 0,
    enableOfflineQueue: false,
    retryStrategy: () => null,
    connectTimeout: timeoutMs,
  });
  let reason: string | undefined;
  probe.on('error', (e: Error) => {
    reason ??= e.message;
  }); // only the message: the error itself can carry the password
  let timer: NodeJS.Timeout | undefined;
  try {
    await Promise.race([
      (async () => {
        await probe.connect();
        await probe.ping();
        await selectDb(probe, conn);
      })(),
      new Promise((_r, rej) => {
        timer = setTimeout(() => rej(new Error(`no answer in ${timeoutMs / 1000} s`)), timeoutMs);
      }),
    ]);
  } catch (e) {
    if (e instanceof ExpError) throw e;
    throw new ExpError({
      code: 'QUEUE_UNREACHABLE',
      message: `cannot reach the queue at ${conn.shown}: ${reason ?? (e as Error).message}`,
      fix: /certificate|SSL|TLS/i.test(`${reason ?? ''} ${(e as Error).message}`)
        ? "the server's TLS certificate is not trusted here: point NODE_EXTRA_CA_CERTS at its CA certificate (PEM), e.g. NODE_EXTRA_CA_CERTS=ca.pem exp worker ..."
        : 'check that Redis runs there (redis-server), and the host, port and password',
      exit: 'failed',
    });
  } finally {
    clearTimeout(timer);
    probe.disconnect();
  }
}

/** Selects the URL's database on the probe; one the server does not have is a coded QUEUE_URL error (not database 0 in silence). */
async function selectDb(probe: Redis, conn: QueueConn): Promise<void> {
  const db = (conn.connection as { db?: number }).db ?? 0;
  if (db === 0) return;
  try {
    await probe.select(db);
  } catch (e) {
    let count = '';
    try {
      const got = (await probe.config('GET', 'databases')) as unknown;
      if (Array.isArray(got) && typeof got[1] === 'string') count = got[1];
    } catch {
      /* CONFIG may be disabled (managed Redis): the count stays unknown */
    }
    throw new ExpError({
      code: 'QUEUE_URL',
      message: `--queue '${conn.shown}' names database ${db}, which the Redis there does not have (${(e as Error).message})`,
      fix: count
        ? `it has ${count} databases: use 0 to ${Number(count) - 1} (e.g. /0), or raise \`databases\` in redis.conf`
        : 'use a database the server has (Redis has 16, 0 to 15, unless its `databases` setting says more)',
    });
  }
}

/** Adds one job per point; a job that exists (same sweep and key) is left as it is. */
export async function enqueue(
  queue: Queue<JobData>,
  items: readonly Omit<JobData, 'version' | 'submitted'>[],
): Promise<{ added: string[]; existing: string[] }> {
  const added: string[] = [];
  const existing: string[] = [];
  for (const item of items) {
    const jobId = jobIdOf(item.spec);
    const before = await queue.getJob(jobId);
    if (before) {
      existing.push(jobId);
      continue;
    }
    await queue.add(
      item.spec.entry.dir,
      { version: 1, ...item, submitted: { by: hostname(), at: new Date().toISOString() } },
      { jobId, removeOnComplete: false, removeOnFail: false },
    );
    added.push(jobId);
  }
  return { added, existing };
}

export interface JobRow {
  id: string;
  name: string;
  state: string;
  worker: string | null;
  attempts: number;
  stalled: number;
  progress: unknown;
  reason: string | null;
  sweep: string;
}

/** Every job of the queue (or of one sweep), with its state and the worker that has it. */
export async function listJobs(queue: Queue<JobData>, sweep?: string): Promise<JobRow[]> {
  const states = ['active', 'waiting', 'delayed', 'prioritized', 'completed', 'failed', 'paused'] as const;
  const rows: JobRow[] = [];
  for (const state of states) {
    for (const j of (await queue.getJobs([state])) as Job<JobData>[]) {
      if (!j?.id || (sweep && j.data?.spec?.sweep !== sweep)) continue;
      rows.push({
        id: j.id,
        name: j.name,
        state,
        worker: j.processedBy ?? null,
        attempts: j.attemptsStarted ?? j.attemptsMade,
        stalled: j.stalledCounter ?? 0,
        progress: j.progress,
        reason: j.failedReason ?? null,
        sweep: j.data?.spec?.sweep ?? '',
      });
    }
  }
  return rows;
}
