/**
 * A queue behind TLS (rediss://), with a password: Debian's redis-server on a TLS port with a
 * self-signed certificate made by openssl. With the CA trusted (NODE_EXTRA_CA_CERTS) exp talks
 * to it; without, the error says the certificate is the problem and how to trust it; the
 * password never appears in what exp prints.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { join } from 'node:path';
import { exp, tempDir } from '../helpers/cli.js';
import { REDIS_BIN } from '../helpers/redis-server.js';
import { freePort } from '../helpers/mlflow-server.js';

let dir: string;
let port: number;
let server: ChildProcess | undefined;
const PASSWORD = 's3cret-tls-pw';
const openssl = spawnSync('openssl', ['version']).status === 0;

before(async () => {
  if (!openssl || !REDIS_BIN) return;
  dir = tempDir('exp-redis-tls-');
  const made = spawnSync(
    'openssl',
    [
      'req',
      '-x509',
      '-newkey',
      'rsa:2048',
      '-nodes',
      '-keyout',
      join(dir, 'key.pem'),
      '-out',
      join(dir, 'cert.pem'),
      '-days',
      '2',
      '-subj',
      '/CN=localhost',
      '-addext',
      'subjectAltName=DNS:localhost,IP:127.0.0.1',
    ],
    { stdio: 'ignore' },
  );
  assert.equal(made.status, 0, 'openssl could not make a certificate');
  port = await freePort();
  server = spawn(
    REDIS_BIN,
    [
      '--port',
      '0',
      '--tls-port',
      String(port),
      '--bind',
      '127.0.0.1',
      '--tls-cert-file',
      join(dir, 'cert.pem'),
      '--tls-key-file',
      join(dir, 'key.pem'),
      '--tls-ca-cert-file',
      join(dir, 'cert.pem'),
      '--tls-auth-clients',
      'no',
      '--requirepass',
      PASSWORD,
      '--save',
      '',
      '--appendonly',
      'no',
      '--dir',
      dir,
    ],
    { stdio: 'ignore' },
  );
  for (let i = 0; i < 100; i++) {
    const r = spawnSync('redis-cli', ['--tls', '--cacert', join(dir, 'cert.pem'), '-p', String(port), '-a', PASSWORD, '--no-auth-warning', 'ping'], {
      encoding: 'utf8',
    });
    if (r.stdout?.trim() === 'PONG') return;
    await new Promise((res) => setTimeout(res, 100));
  }
  throw new Error('redis-server with TLS did not start');
});

after(() => {
  server?.kill('SIGKILL');
});

test('rediss:// with a password: works with the CA trusted; without, a coded error that says how to trust it; the password is never printed', (t) => {
  if (!openssl || !REDIS_BIN) {
    t.skip('needs openssl and redis-server (bash scripts/setup-test-env.sh)');
    return;
  }
  const url = `rediss://:${PASSWORD}@localhost:${port}`;
  const ok = exp(['queue', 'status', '--queue', url], { env: { NODE_EXTRA_CA_CERTS: join(dir, 'cert.pem') } });
  assert.equal(ok.code, 0, ok.stderr);
  assert.match(ok.stdout, /empty/);
  const untrusted = exp(['queue', 'status', '--queue', url], { env: { NODE_EXTRA_CA_CERTS: '' } });
  assert.equal(untrusted.code, 1);
  assert.match(untrusted.stderr, /QUEUE_UNREACHABLE/);
  assert.match(untrusted.stderr, /NODE_EXTRA_CA_CERTS/);
  for (const r of [ok, untrusted]) assert.ok(!(r.stdout + r.stderr).includes(PASSWORD), 'the password was printed');
});
