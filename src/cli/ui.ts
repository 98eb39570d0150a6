import { spawn } from 'node:child_process';
import { accessSync, closeSync, constants, existsSync, mkdirSync, openSync, readFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { delimiter, join, resolve } from 'node:path';
import { defineCommand } from './command.js';
import { EXIT, type Io } from './io.js';
import { ExpError } from '../errors.js';
import { displayPath } from './report.js';

const DEFAULT_STORE = '.exp/mlflow';
const DEFAULT_PORT = 5000;
const INSTALL = 'python3 -m venv .venv && .venv/bin/pip install mlflow==3.17.2   (or: bash scripts/setup-test-env.sh)';

const executable = (p: string): boolean => {
  try {
    accessSync(p, constants.X_OK);
    return true;
  } catch {
    return false;
  }
};

/** The project's .venv/bin/mlflow, else the first mlflow on PATH. */
export function findMlflow(cwd: string, env: NodeJS.ProcessEnv): string | undefined {
  const local = join(cwd, '.venv', 'bin', 'mlflow');
  if (executable(local)) return local;
  return (env.PATH ?? '')
    .split(delimiter)
    .filter(Boolean)
    .map((d) => join(d, 'mlflow'))
    .find(executable);
}

/** Resolves when `port` on `host` can be bound (and releases it), rejects with the reason when not. */
function checkPort(host: string, port: number): Promise<void> {
  return new Promise((res, rej) => {
    const s = createServer();
    s.once('error', rej);
    s.listen(port, host, () => s.close(() => res()));
  });
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

const groupAlive = (pid: number): boolean => {
  try {
    process.kill(-pid, 0);
    return true;
  } catch {
    return false;
  }
};

export const uiCommand = defineCommand({
  name: 'ui',
  summary: 'Start a local MLflow tracking server and UI over a project-local store; runs until Ctrl-C.',
  usage: 'ui [--port N] [--host H] [--store DIR] [--print-env]',
  details: [
    `The store is a folder (default ${DEFAULT_STORE}) holding mlflow.db (SQLite), artifacts/ and server.log. Runs reach it when`,
    'MLFLOW_TRACKING_URI (or tracking.uri in the experiment file) is the printed URL; `exp sync` sends runs trained before.',
    `Needs MLflow: .venv/bin/mlflow in this folder, or mlflow on PATH. To install it: ${INSTALL}`,
  ].join('\n'),
  positionals: { name: 'argument', max: 0 },
  flags: {
    port: { type: 'int', arg: 'N', default: DEFAULT_PORT, min: 1, max: 65535, description: 'Port to listen on.' },
    host: { type: 'string', arg: 'H', default: '127.0.0.1', description: 'Address to listen on (0.0.0.0 for every interface).' },
    store: { type: 'string', arg: 'DIR', default: DEFAULT_STORE, description: 'Store folder.' },
    'print-env': { type: 'boolean', description: 'Also print the export MLFLOW_TRACKING_URI=... line for your shell.' },
  },
  async run(_args, flags, io) {
    const cwd = io.cwd ?? process.cwd();
    const { port, host } = flags;
    const bin = findMlflow(cwd, io.env);
    if (!bin)
      throw new ExpError({
        code: 'MLFLOW_CONFIG',
        message: `MLflow is not installed: no .venv/bin/mlflow in ${cwd} and no mlflow on PATH`,
        fix: `install it with: ${INSTALL}`,
        exit: 'failed',
      });
    try {
      await checkPort(host, port);
    } catch (e) {
      throw new ExpError({
        code: 'MLFLOW_CONFIG',
        message: `cannot listen on ${host}:${port} (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`,
        fix: 'is another server using it? Pick another port with --port',
        exit: 'failed',
      });
    }
    const store = resolve(cwd, flags.store);
    mkdirSync(join(store, 'artifacts'), { recursive: true });
    return serve(io, bin, store, host, port, flags['print-env']);
  },
});

/** The mlflow server child, in its own process group, and its exit status once it has ended. */
interface ServerChild {
  pid: number;
  exited: Promise<void>;
  /** undefined while it runs; its status (128 when a signal ended it) after. */
  exitCode: () => number | null | undefined;
  killGroup: (sig: NodeJS.Signals) => void;
}

function spawnServer(io: Io, bin: string, store: string, host: string, port: number, logPath: string): ServerChild {
  const fd = openSync(logPath, 'a');
  const child = spawn(
    bin,
    [
      'server',
      '--backend-store-uri',
      `sqlite:///${join(store, 'mlflow.db')}`,
      '--artifacts-destination',
      join(store, 'artifacts'),
      '--host',
      host,
      '--port',
      String(port),
      '--workers',
      '1',
      // Reachable by its address, not only as localhost, when it listens beyond loopback.
      ...(host === '127.0.0.1' || host === 'localhost' ? [] : ['--allowed-hosts', '*']),
    ],
    {
      cwd: store, // MLflow must not write ./mlruns into the project
      detached: true, // its own process group, so stopping reaches uvicorn too
      stdio: ['ignore', fd, fd],
      // The GenAI job runner adds several processes that exp never uses.
      env: { ...io.env, MLFLOW_SERVER_ENABLE_JOB_EXECUTION: io.env.MLFLOW_SERVER_ENABLE_JOB_EXECUTION ?? 'false', PYTHONUNBUFFERED: '1' },
    },
  );
  closeSync(fd);
  const pid = child.pid!;
  let exitCode: number | null | undefined;
  const exited = new Promise<void>((r) =>
    child.once('exit', (c, sig) => {
      exitCode = c ?? (sig ? 128 : null);
      r();
    }),
  );
  const killGroup = (sig: NodeJS.Signals): void => {
    try {
      process.kill(-pid, sig);
    } catch {
      /* gone */
    }
  };
  return { pid, exited, exitCode: () => exitCode, killGroup };
}

/** Ctrl-C and SIGTERM, as a flag and a promise, until disposed. */
function stopRequests(): { stopping: () => boolean; requested: Promise<void>; dispose: () => void } {
  let stopping = false;
  let wake: () => void = () => {};
  const requested = new Promise<void>((r) => (wake = r));
  const onSignal = (): void => {
    stopping = true;
    wake();
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  const dispose = (): void => {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
  };
  return { stopping: () => stopping, requested, dispose };
}

/** Polls /health until the server answers, it exits, a stop is asked for, or 120 s pass; true when it answered. */
async function waitUntilUp(url: string, over: () => boolean): Promise<boolean> {
  const deadline = Date.now() + 120_000;
  while (!over() && Date.now() < deadline) {
    try {
      const r = await fetch(`${url}/health`, { signal: AbortSignal.timeout(2000) });
      await r.text();
      if (r.ok) return true;
    } catch {
      await sleep(250);
    }
  }
  return false;
}

/** SIGTERM to the whole group, up to 10 s for the server and 5 s for its workers, then SIGKILL. */
async function stopServer(child: ServerChild): Promise<void> {
  child.killGroup('SIGTERM');
  await Promise.race([child.exited, sleep(10_000)]);
  for (let i = 0; i < 50 && groupAlive(child.pid); i++) await sleep(100);
  child.killGroup('SIGKILL');
}

async function serve(io: Io, bin: string, store: string, host: string, port: number, printEnv: boolean): Promise<number> {
  const logPath = join(store, 'server.log');
  const log = (): string => (existsSync(logPath) ? readFileSync(logPath, 'utf8').slice(-3000) : '');
  const child = spawnServer(io, bin, store, host, port, logPath);
  const onExit = (): void => child.killGroup('SIGKILL'); // never leave a server behind
  process.once('exit', onExit);
  const stop = stopRequests();
  const url = `http://${host === '0.0.0.0' ? '127.0.0.1' : host.includes(':') ? `[${host}]` : host}:${port}`;
  try {
    const up = await waitUntilUp(url, () => stop.stopping() || child.exitCode() !== undefined);
    if (!up && !stop.stopping()) {
      const exitCode = child.exitCode();
      io.stderr.write(
        `exp ui: mlflow server ${exitCode === undefined ? 'did not answer within 120 s' : `exited (status ${exitCode})`}; its log (${logPath}):\n${log()}\n`,
      );
      return EXIT.failed;
    }
    if (up) {
      io.stdout.write(`MLflow UI: ${url}\n  store ${displayPath(store, io.cwd)} (log: ${displayPath(logPath, io.cwd)})\n`);
      if (printEnv) io.stdout.write(`export MLFLOW_TRACKING_URI=${url}\n`);
      io.stdout.write('Press Ctrl-C to stop.\n');
    }
    await Promise.race([child.exited, stop.requested]);
    if (!stop.stopping()) {
      io.stderr.write(`exp ui: mlflow server exited (status ${child.exitCode()}); its log (${logPath}):\n${log()}\n`);
      return EXIT.failed;
    }
    io.stdout.write('Stopping the MLflow server ...\n');
    return EXIT.ok;
  } finally {
    await stopServer(child);
    stop.dispose();
    process.removeListener('exit', onExit);
  }
}
