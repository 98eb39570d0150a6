/**
 * A real MLflow tracking server for tests: `.venv/bin/mlflow server` (installed by
 * scripts/setup-test-env.sh) on a free loopback port, with a SQLite store and proxied
 * artifacts in a temp folder. stop() and restart() keep the port and the store, so a test
 * can simulate an outage and recovery.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { closeSync, existsSync, mkdtempSync, openSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const ROOT = new URL('../../', import.meta.url).pathname;
export const MLFLOW_BIN = join(ROOT, '.venv', 'bin', 'mlflow');

export interface MlflowServer {
  /** e.g. http://127.0.0.1:41234 */
  uri: string;
  port: number;
  /** Temp folder holding mlflow.db, artifacts/ and server.log. */
  dir: string;
  /** Kills the server's whole process group and waits for it to be gone. Idempotent. */
  stop(): Promise<void>;
  /** Starts it again on the same port and store, and waits for /health. */
  restart(): Promise<void>;
  /** stop(), then deletes `dir` (store, artifacts, log). */
  dispose(): Promise<void>;
  /** The server's log so far (stdout and stderr), for failure messages. */
  log(): string;
  /** Milliseconds the last start took until /health answered. */
  startMs: number;
}

export interface StartOptions {
  /** Bound on the wait for /health; default 120 s (a cold start on 2 busy cores can take 30 s). */
  healthTimeoutMs?: number;
}

/** A port that was free a moment ago on 127.0.0.1. */
export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.unref();
    s.on('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const addr = s.address();
      const port = typeof addr === 'object' && addr ? addr.port : 0;
      s.close(() => resolve(port));
    });
  });
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/**
 * Whether any live (non-zombie) process is still in process group `pgid`. Reads /proc, because
 * kill(-pgid, 0) also succeeds for zombies, and in a container PID 1 may never reap the
 * orphans (uvicorn outlives its parent for a moment).
 */
function groupAlive(pgid: number): boolean {
  if (!existsSync('/proc/self/stat')) {
    try {
      process.kill(-pgid, 0);
      return true;
    } catch {
      return false;
    }
  }
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    let stat: string;
    try {
      stat = readFileSync(`/proc/${name}/stat`, 'utf8');
    } catch {
      continue;
    }
    // pid (comm) state ppid pgrp ...; comm may contain spaces, so split after the last ')'.
    const [state, , pgrp] = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    if (Number(pgrp) === pgid && state !== 'Z' && state !== 'X') return true;
  }
  return false;
}

/** Starts MLflow; throws with a pointer to scripts/setup-test-env.sh when .venv/bin/mlflow is missing. */
export async function startMlflow(opts: StartOptions = {}): Promise<MlflowServer> {
  if (!existsSync(MLFLOW_BIN)) {
    throw new Error(`${MLFLOW_BIN} is missing: run \`bash scripts/setup-test-env.sh\` to create the project's .venv with MLflow`);
  }
  const dir = mkdtempSync(join(tmpdir(), 'exp-mlflow-'));
  const port = await freePort();
  const uri = `http://127.0.0.1:${port}`;
  const logPath = join(dir, 'server.log');
  const healthTimeoutMs = opts.healthTimeoutMs ?? 120_000;
  let child: ChildProcess | undefined;
  let exited: Promise<void> = Promise.resolve();

  const killGroup = (signal: NodeJS.Signals): void => {
    if (child?.pid !== undefined)
      try {
        process.kill(-child.pid, signal);
      } catch {
        /* already gone */
      }
  };
  // A crashed test run must not leave a server behind.
  const onExit = (): void => killGroup('SIGKILL');
  process.once('exit', onExit);

  const server: MlflowServer = {
    uri,
    port,
    dir,
    startMs: 0,
    log: () => (existsSync(logPath) ? readFileSync(logPath, 'utf8') : ''),
    async stop() {
      const pid = child?.pid;
      if (pid === undefined) return;
      killGroup('SIGTERM');
      const deadline = Date.now() + 10_000;
      while (groupAlive(pid) && Date.now() < deadline) await sleep(100);
      if (groupAlive(pid)) killGroup('SIGKILL');
      await exited;
      const hard = Date.now() + 5_000;
      while (groupAlive(pid) && Date.now() < hard) await sleep(50);
      child = undefined;
    },
    async restart() {
      await server.stop();
      await start();
    },
    async dispose() {
      await server.stop();
      process.removeListener('exit', onExit);
      rmSync(dir, { recursive: true, force: true });
    },
  };

  async function start(): Promise<void> {
    const t0 = Date.now();
    const fd = openSync(logPath, 'a');
    child = spawn(
      MLFLOW_BIN,
      [
        'server',
        '--backend-store-uri',
        `sqlite:///${join(dir, 'mlflow.db')}`,
        '--artifacts-destination',
        join(dir, 'artifacts'),
        '--host',
        '127.0.0.1',
        '--port',
        String(port),
        '--workers',
        '1',
      ],
      {
        cwd: dir, // MLflow must not find or write ./mlruns or ./mlflow.db in the repo
        detached: true, // its own process group, so stop() reaches uvicorn too
        stdio: ['ignore', fd, fd],
        // The job runner (huey consumers, ~7 processes) serves GenAI jobs we never use.
        env: { ...process.env, MLFLOW_SERVER_ENABLE_JOB_EXECUTION: 'false', PYTHONUNBUFFERED: '1' },
      },
    );
    closeSync(fd);
    const proc = child;
    let gone = false;
    exited = new Promise((resolve) =>
      proc.once('exit', () => {
        gone = true;
        resolve();
      }),
    );
    const deadline = t0 + healthTimeoutMs;
    while (Date.now() < deadline) {
      if (gone) throw new Error(`mlflow server exited during start (exit ${proc.exitCode}); log:\n${server.log().slice(-3000)}`);
      try {
        const res = await fetch(`${uri}/health`, { signal: AbortSignal.timeout(2000) });
        if (res.ok) {
          await res.text();
          server.startMs = Date.now() - t0;
          return;
        }
      } catch {
        /* not up yet */
      }
      await sleep(200);
    }
    await server.stop();
    throw new Error(`mlflow server did not answer ${uri}/health within ${healthTimeoutMs} ms; log:\n${server.log().slice(-3000)}`);
  }

  try {
    await start();
  } catch (e) {
    process.removeListener('exit', onExit);
    throw e;
  }
  return server;
}
