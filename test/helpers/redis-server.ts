/**
 * A real Redis for tests: Debian's redis-server (installed by scripts/setup-test-env.sh) on a
 * free loopback port, persisting nothing, in a temp folder; stop() kills it.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import { freePort } from './mlflow-server.js';

export const REDIS_BIN = ['/usr/bin/redis-server', '/usr/local/bin/redis-server'].find((p) => existsSync(p));

export interface RedisServer {
  url: string;
  port: number;
  stop(): Promise<void>;
}

export async function startRedis(opts: { password?: string } = {}, tries = 3): Promise<RedisServer> {
  if (!REDIS_BIN) throw new Error('redis-server is not installed; run: bash scripts/setup-test-env.sh (or apt-get install redis-server)');
  const port = await freePort();
  const dir = mkdtempSync(join(tmpdir(), 'exp-redis-'));
  const child: ChildProcess = spawn(
    REDIS_BIN,
    [
      '--port',
      String(port),
      '--bind',
      '127.0.0.1',
      '--save',
      '',
      '--appendonly',
      'no',
      '--dir',
      dir,
      ...(opts.password ? ['--requirepass', opts.password] : []),
    ],
    { stdio: 'ignore' },
  );
  const url = `redis://${opts.password ? `:${encodeURIComponent(opts.password)}@` : ''}127.0.0.1:${port}`;
  const deadline = Date.now() + 20_000;
  for (;;) {
    // The port was free a moment ago; if another process took it, this server exits: try another.
    if (child.exitCode !== null) {
      rmSync(dir, { recursive: true, force: true });
      if (tries > 1) return startRedis(opts, tries - 1);
      throw new Error('redis-server exited at start');
    }
    const r = new Redis({
      port,
      host: '127.0.0.1',
      ...(opts.password ? { password: opts.password } : {}),
      lazyConnect: true,
      maxRetriesPerRequest: 0,
      retryStrategy: () => null,
    });
    r.on('error', () => undefined);
    try {
      await r.connect();
      await r.ping();
      r.disconnect();
      break;
    } catch {
      r.disconnect();
    }
    if (Date.now() > deadline) throw new Error('redis-server did not start');
    await new Promise((res) => setTimeout(res, 100));
  }
  return {
    url,
    port,
    stop: async () => {
      child.kill('SIGKILL');
      await new Promise((r) => (child.exitCode !== null ? r(undefined) : child.once('exit', r)));
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
