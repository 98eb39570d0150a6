/**
 * The MLflow client's HTTP behaviour against a tiny local server that records what it gets:
 * auth headers, retries, timeouts, the create race, and checks that refuse to send. No MLflow
 * needed; test/mlflow/server.test.ts runs the client against a real server.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type IncomingHttpHeaders, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { clientFromEnv, MlflowClient, MlflowError, LIMITS } from '../../src/mlflow/client.js';
import { prepareBatch, splitBatch } from '../../src/mlflow/batch.js';
import { retryDelay } from '../../src/mlflow/http.js';
import { freePort } from '../helpers/mlflow-server.js';

interface Seen {
  method: string;
  url: string;
  headers: IncomingHttpHeaders;
  body: string;
}
type Handler = (req: Seen, n: number, res: ServerResponse) => void;

/** Runs `fn` with a loopback server whose answers come from `handler`; returns what it saw. */
async function withServer(handler: Handler, fn: (uri: string, seen: Seen[]) => Promise<void>): Promise<Seen[]> {
  const seen: Seen[] = [];
  const server = createServer((req: IncomingMessage, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const s = { method: req.method ?? '', url: req.url ?? '', headers: req.headers, body: Buffer.concat(chunks).toString('utf8') };
      seen.push(s);
      handler(s, seen.length, res);
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  try {
    await fn(`http://127.0.0.1:${(server.address() as AddressInfo).port}`, seen);
  } finally {
    server.closeAllConnections();
    await new Promise((r) => server.close(r));
  }
  return seen;
}

const json = (res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void => {
  res.writeHead(status, { 'Content-Type': 'application/json', ...headers });
  res.end(JSON.stringify(body));
};
const experimentOk = (res: ServerResponse): void => json(res, 200, { experiment: { experiment_id: '7', name: 'e' } });

test('basic auth from username/password is sent on every request', async () => {
  const seen = await withServer(
    (_r, _n, res) => experimentOk(res),
    async (uri) => {
      const c = new MlflowClient({ uri, username: 'ada', password: 's3:cret' });
      await c.getOrCreateExperiment('e');
    },
  );
  assert.equal(seen.length, 1);
  assert.equal(seen[0]!.headers.authorization, `Basic ${Buffer.from('ada:s3:cret').toString('base64')}`);
  assert.match(seen[0]!.url, /^\/api\/2\.0\/mlflow\/experiments\/get-by-name\?experiment_name=e$/);
});

test('clientFromEnv reads MLFLOW_TRACKING_* credentials (bearer token; basic wins when both are set)', async () => {
  const seen = await withServer(
    (_r, _n, res) => experimentOk(res),
    async (uri) => {
      await clientFromEnv(uri, { MLFLOW_TRACKING_TOKEN: 'tok-1' }).getOrCreateExperiment('e');
      await clientFromEnv(uri, { MLFLOW_TRACKING_TOKEN: 't', MLFLOW_TRACKING_USERNAME: 'u', MLFLOW_TRACKING_PASSWORD: 'p' }).getOrCreateExperiment('e');
      await clientFromEnv(uri, {}).getOrCreateExperiment('e');
      // Credentials in the URI become basic auth (fetch itself refuses such URLs).
      await new MlflowClient({ uri: uri.replace('//', '//bob:pw%40x@') + '/' }).getOrCreateExperiment('e');
    },
  );
  assert.deepEqual(
    seen.map((s) => s.headers.authorization),
    ['Bearer tok-1', `Basic ${Buffer.from('u:p').toString('base64')}`, undefined, `Basic ${Buffer.from('bob:pw@x').toString('base64')}`],
  );
  assert.throws(
    () => clientFromEnv('file:///tmp/mlruns', {}),
    (e: unknown) => e instanceof MlflowError && e.kind === 'config',
  );
});

test('a 503 is retried with backoff until the server answers', async () => {
  const seen = await withServer(
    (_r, n, res) => (n <= 2 ? json(res, 503, { error_code: 'TEMPORARILY_UNAVAILABLE', message: 'busy' }) : experimentOk(res)),
    async (uri) => {
      const id = await new MlflowClient({ uri, backoffMs: 10 }).getOrCreateExperiment('e');
      assert.equal(id, '7');
    },
  );
  assert.equal(seen.length, 3);
});

test('the delay before a retry: Retry-After when the server gives one, else exponential with jitter; capped', () => {
  const o = { backoffMs: 100, maxBackoffMs: 1000 };
  assert.equal(retryDelay(o, 1, '0.2'), 200);
  assert.equal(retryDelay(o, 1, '0'), 0);
  assert.equal(retryDelay(o, 1, '3600'), 1000, 'capped');
  for (const [attempt, d] of [
    [1, 100],
    [2, 200],
    [3, 400],
    [5, 1000],
  ] as const) {
    for (const header of [null, 'soon']) {
      const v = retryDelay(o, attempt, header);
      assert.ok(v >= d / 2 && v <= d, `attempt ${attempt}: ${v} in [${d / 2}, ${d}]`);
    }
  }
});

test('retries are bounded, honour Retry-After, and end in a typed error', async () => {
  // Retry-After: 0 against a 10 s backoff: the retries come at once only because the header is followed (no clock is read here).
  const seen = await withServer(
    (_r, _n, res) => json(res, 429, { error_code: 'REQUEST_LIMIT_EXCEEDED', message: 'slow down' }, { 'Retry-After': '0' }),
    async (uri) => {
      await assert.rejects(new MlflowClient({ uri, retries: 2, backoffMs: 600_000 }).getRun('r1'), (e: unknown) => {
        assert.ok(e instanceof MlflowError);
        assert.deepEqual([e.kind, e.status, e.errorCode, e.route, e.retryable], ['http', 429, 'REQUEST_LIMIT_EXCEEDED', 'runs/get', true]);
        return true;
      });
    },
  );
  assert.equal(seen.length, 3);
});

test('a 4xx is not retried', async () => {
  const seen = await withServer(
    (_r, _n, res) => json(res, 404, { error_code: 'RESOURCE_DOES_NOT_EXIST', message: 'no run' }),
    async (uri) => {
      await assert.rejects(
        new MlflowClient({ uri, backoffMs: 1 }).getRun('nope'),
        (e: unknown) => e instanceof MlflowError && e.status === 404 && e.errorCode === 'RESOURCE_DOES_NOT_EXIST' && !e.retryable,
      );
    },
  );
  assert.equal(seen.length, 1);
});

test('an unreachable server is a network error after bounded retries; a silent one a timeout', async () => {
  const port = await freePort();
  await assert.rejects(
    new MlflowClient({ uri: `http://127.0.0.1:${port}`, retries: 1, backoffMs: 1 }).getRun('r'),
    (e: unknown) => e instanceof MlflowError && e.kind === 'network' && e.retryable,
  );
  const seen = await withServer(
    () => {
      /* never answers */
    },
    async (uri) => {
      await assert.rejects(
        new MlflowClient({ uri, retries: 1, backoffMs: 1, timeoutMs: 150 }).getRun('r'),
        (e: unknown) => e instanceof MlflowError && e.kind === 'timeout',
      );
    },
  );
  assert.equal(seen.length, 2);
});

test("losing an experiment create race (400 RESOURCE_ALREADY_EXISTS) returns the winner's id", async () => {
  const seen = await withServer(
    (req, n, res) => {
      if (n === 1) json(res, 404, { error_code: 'RESOURCE_DOES_NOT_EXIST', message: 'none' });
      else if (n === 2) json(res, 400, { error_code: 'RESOURCE_ALREADY_EXISTS', message: 'exists' });
      else experimentOk(res);
      void req;
    },
    async (uri) => {
      assert.equal(await new MlflowClient({ uri }).getOrCreateExperiment('e'), '7');
    },
  );
  assert.deepEqual(
    seen.map((s) => `${s.method} ${s.url.split('?')[0]}`),
    ['GET /api/2.0/mlflow/experiments/get-by-name', 'POST /api/2.0/mlflow/experiments/create', 'GET /api/2.0/mlflow/experiments/get-by-name'],
  );
  // exp's experiments open in MLflow 3 on the training runs (the experiment kind for model development).
  assert.deepEqual(JSON.parse(seen[1]!.body), { name: 'e', tags: [{ key: 'mlflow.experimentKind', value: 'custom_model_development' }] });
});

test('invalid keys and over-long values are refused before anything is sent', async () => {
  const seen = await withServer(
    (_r, _n, res) => json(res, 200, {}),
    async (uri) => {
      const c = new MlflowClient({ uri });
      const bad: [string, Parameters<MlflowClient['logBatch']>[1]][] = [
        [
          'bad char',
          {
            metrics: [
              { key: 'loss', value: 1 },
              { key: 'acc*', value: 1 },
            ],
          },
        ],
        ['leading slash', { params: { '/a': 1 } }],
        ['dot dot', { params: { 'a/../b': 1 } }],
        ['empty', { tags: { '': 'x' } }],
        ['too long key', { params: { ['k'.repeat(251)]: 1 } }],
        ['param value', { params: { p: 'x'.repeat(6001) } }],
        ['tag value', { tags: { t: 'x'.repeat(8001) } }],
        ['step', { metrics: [{ key: 'loss', value: 1, step: 1.5 }] }],
        ['value type', { metrics: [{ key: 'loss', value: '1' as unknown as number }] }],
      ];
      for (const [why, batch] of bad) {
        await assert.rejects(c.logBatch('r', batch), (e: unknown) => e instanceof MlflowError && e.kind === 'validation' && e.route === 'runs/log-batch', why);
      }
      await assert.rejects(c.setTag('r', 'a//b', 'v'), (e: unknown) => e instanceof MlflowError && e.kind === 'validation');
      for (const path of ['../x.png', '/abs.png', 'a//b.png', 'a/./b.png', 'a\\b.png', 'a#b.png', '']) {
        await assert.rejects(
          c.uploadArtifact('mlflow-artifacts:/1/r/artifacts', path, 'x'),
          (e: unknown) => e instanceof MlflowError && e.kind === 'validation',
          path,
        );
      }
    },
  );
  assert.equal(seen.length, 0);
});

test('splitBatch respects every log-batch limit and keeps every item once, in order', () => {
  const now = 1_700_000_000_000;
  const items = prepareBatch(
    {
      metrics: Array.from({ length: 2500 }, (_, i) => ({ key: `m${i % 25}`, value: i, step: Math.floor(i / 25) })),
      // 150 params of 12 kB (6000 two-byte characters): by count 100 fit a request, by bytes 81.
      params: Object.fromEntries(Array.from({ length: 150 }, (_, i) => [`p${i}`, 'é'.repeat(6000)])),
      tags: Object.fromEntries(Array.from({ length: 250 }, (_, i) => [`t${i}`, String(i)])),
    },
    now,
  );
  const bodies = splitBatch('run1', items);
  for (const b of bodies) {
    assert.ok(b.metrics.length <= LIMITS.metricsPerBatch && b.params.length <= LIMITS.paramsPerBatch && b.tags.length <= LIMITS.tagsPerBatch);
    assert.ok(b.metrics.length + b.params.length + b.tags.length <= LIMITS.itemsPerBatch);
    assert.ok(Buffer.byteLength(JSON.stringify(b)) <= LIMITS.batchBytes);
  }
  assert.deepEqual(
    bodies.flatMap((b) => b.metrics),
    items.metrics,
  );
  assert.deepEqual(
    bodies.flatMap((b) => b.params),
    items.params,
  );
  assert.deepEqual(
    bodies.flatMap((b) => b.tags),
    items.tags,
  );
  assert.ok(bodies[0]!.params.length < LIMITS.paramsPerBatch && bodies[0]!.params.length > 70, 'the byte limit binds first');
  assert.equal(bodies.length, 4); // 83 params fill the first by bytes; 250 tags need three at 100 each
  assert.equal(items.metrics[0]!.timestamp, now);
  assert.equal(
    splitBatch(
      'r',
      prepareBatch(
        {
          metrics: Array.from({ length: 2500 }, (_, i) => ({ key: 'm', value: i, step: i })),
          params: Object.fromEntries(Array.from({ length: 150 }, (_, i) => [`p${i}`, i])),
        },
        now,
      ),
    ).length,
    3,
  );
  assert.deepEqual(
    prepareBatch(
      {
        metrics: [
          { key: 'a', value: NaN },
          { key: 'b', value: -Infinity },
        ],
      },
      now,
    ).metrics.map((m) => m.value),
    ['NaN', '-Infinity'],
  );
});
