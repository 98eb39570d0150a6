/**
 * Queue jobs are untrusted input (any client of the Redis can add or edit one), on a real Redis
 * with real `exp worker` processes: a job whose names are paths writes nothing outside (or
 * inside) the worker's runs folder and fails once with a coded reason; a job whose config the
 * schema rejects likewise; a job that names a tracking server never gets the worker's
 * credentials sent there (two local HTTP servers record every Authorization header); a Redis
 * database the server does not have is a coded error, not database 0 in silence.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import { Queue } from 'bullmq';
import { parse, stringify } from 'yaml';
import { BIN, exp, expIn, tempDir, type CliResult } from '../helpers/cli.js';
import { startRedis, type RedisServer } from '../helpers/redis-server.js';
import { tinyExperiment, trainingBackends } from '../helpers/training.js';
import { QUEUE_NAME, type JobData } from '../../src/exec/queue.js';

let redis: RedisServer;
let tmp: string;
let queue: Queue<JobData>;
/** A real job, as `exp run FILE --queue URL` wrote it: the attacks below are edits of it. */
let template: JobData;

before(
  async () => {
    redis = await startRedis();
    tmp = tempDir('exp-queue-trust-');
    const backend = (await trainingBackends())[0]!;
    const file = tinyExperiment(tmp, { backend, name: 'trust', epochs: 1, count: 48 });
    const sub = await expIn(['run', file, '--queue', redis.url, '--detach', '--runs-dir', join(tmp, 'submitter')], { cwd: tmp });
    assert.equal(sub.code, 0, sub.stderr);
    queue = new Queue<JobData>(QUEUE_NAME, { connection: { host: '127.0.0.1', port: redis.port } });
    const [job, ...more] = await queue.getJobs(['waiting']);
    assert.ok(job && more.length === 0, 'one job queued');
    template = job.data;
    await job.remove();
  },
  { timeout: 180_000 },
);

after(async () => {
  await queue?.close();
  await redis?.stop();
});

const copy = (): JobData => JSON.parse(JSON.stringify(template)) as JobData;

/** Adds crafted jobs (each allowed 3 attempts, so that "not retried" is visible). */
async function push(jobs: Record<string, JobData>): Promise<void> {
  for (const [id, data] of Object.entries(jobs))
    await queue.add(data.spec?.entry?.dir ?? id, data, { jobId: id, attempts: 3, removeOnComplete: false, removeOnFail: false });
}

/** Every file and folder under `dir`, relative to it. */
function tree(dir: string): string[] {
  if (!existsSync(dir)) return [];
  return readdirSync(dir, { recursive: true, encoding: 'utf8' }).sort();
}

/** `exp worker` until the queue is idle, as a separate process. */
function worker(runsDir: string, env: NodeJS.ProcessEnv, extra: string[] = []): Promise<CliResult> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [BIN, 'worker', '--queue', redis.url, '--runs-dir', runsDir, '--exit-when-idle', ...extra], {
      cwd: tmp,
      env: { ...process.env, MLFLOW_TRACKING_URI: '', MLFLOW_TRACKING_TOKEN: '', MLFLOW_TRACKING_USERNAME: '', MLFLOW_TRACKING_PASSWORD: '', ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d));
    child.stderr.on('data', (d: Buffer) => (stderr += d));
    child.on('close', (code) => resolve({ code: code ?? -1, stdout, stderr }));
  });
}

test('regression: a queue job whose spec.experiment or spec.entry.dir holds ../ writes nothing outside --runs-dir and fails once with QUEUE_JOB_INVALID', async () => {
  const root = tempDir('exp-queue-escape-');
  const runsDir = join(root, 'deep', 'a', 'b', 'runs');
  mkdirSync(runsDir, { recursive: true });
  const crafted: Record<string, (d: JobData) => void> = {
    'esc-experiment': (d) => (d.spec.experiment = '../../../escape-exp'),
    'esc-dir': (d) => (d.spec.entry.dir = '../../../escape-run'),
    'esc-absolute': (d) => (d.spec.entry.dir = join(root, 'absolute-run')),
    'esc-sweep': (d) => (d.spec.sweep = '..'),
    'esc-uid': (d) => (d.spec.sweepUid = '../../x'),
  };
  const jobs: Record<string, JobData> = {};
  for (const [id, edit] of Object.entries(crafted)) {
    const d = copy();
    d.spec.sweep = `${d.spec.sweep}-${id}`;
    edit(d);
    jobs[id] = d;
  }
  await push(jobs);
  const w = await worker(runsDir, {});
  assert.equal(w.code, 0, w.stderr);
  assert.match(w.stdout, /worker done: 0 completed, 5 failed/);
  const outside = tree(root)
    .map((p) => join(root, p))
    .filter((p) => relative(runsDir, p).startsWith('..') && !runsDir.startsWith(`${p}/`));
  assert.deepEqual(outside, [], 'nothing outside the runs folder');
  assert.deepEqual(tree(runsDir), [], 'nothing written at all for a refused job');
  for (const id of Object.keys(crafted)) {
    const job = (await queue.getJob(id))!;
    assert.equal(await job.getState(), 'failed', id);
    assert.match(job.failedReason, /^QUEUE_JOB_INVALID: queue job "esc-[a-z]+": spec\.(experiment|entry\.dir|sweep|sweepUid) /, id);
    assert.equal(job.attemptsMade, 1, `${id}: a job that can never succeed is not retried`);
  }
  const status = await expIn(['queue', 'status', '--queue', redis.url], { cwd: tmp });
  assert.match(status.stdout, /failed .*QUEUE_JOB_INVALID: queue job "esc-dir": spec\.entry\.dir "\.\.\/\.\.\/\.\.\/escape-run"/);
  await queue.obliterate({ force: true });
});

test('regression: a queue job whose config the schema rejects fails with the schema problem as its reason and writes no run folder', async () => {
  const runsDir = join(tempDir('exp-queue-schema-'), 'runs');
  const bad = copy();
  const cfg = parse(bad.spec.configText) as { training: { epochs: number } };
  cfg.training.epochs = -3;
  bad.spec.configText = stringify(cfg);
  const notYaml = copy();
  notYaml.spec.configText = 'name: [unclosed';
  const renamed = copy();
  renamed.spec.experiment = 'other';
  await push({ 'schema-epochs': bad, 'schema-yaml': notYaml, 'schema-name': renamed });
  const w = await worker(runsDir, {});
  assert.equal(w.code, 0, w.stderr);
  assert.match(w.stdout, /worker done: 0 completed, 3 failed/);
  assert.deepEqual(tree(runsDir), []);
  const reasons = Object.fromEntries(
    (JSON.parse((await expIn(['queue', 'status', '--queue', redis.url, '--json'], { cwd: tmp })).stdout) as { id: string; reason: string }[]).map((r) => [
      r.id,
      r.reason,
    ]),
  );
  assert.match(reasons['schema-epochs']!, /^QUEUE_JOB_INVALID: .*config\.yaml does not pass the schema: line \d+: .*training\.epochs/);
  assert.match(reasons['schema-yaml']!, /^QUEUE_JOB_INVALID: .*config\.yaml/);
  assert.match(reasons['schema-name']!, /^QUEUE_JOB_INVALID: .*spec\.experiment "other" is not the config's name "trust"/);
  await queue.obliterate({ force: true });
});

interface Recorder {
  uri: string;
  auth: (string | undefined)[];
  close(): Promise<void>;
}

/** An HTTP server on 127.0.0.1 that records the Authorization header of every request (and answers 404). */
async function recorder(): Promise<Recorder> {
  const auth: (string | undefined)[] = [];
  const server: Server = createServer((req, res) => {
    auth.push(req.headers.authorization);
    req.resume();
    res.writeHead(404, { 'content-type': 'application/json' }).end('{"error_code":"ENDPOINT_NOT_FOUND","message":"recorder"}');
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as { port: number }).port;
  return { uri: `http://127.0.0.1:${port}`, auth, close: () => new Promise((r) => server.close(() => r())) };
}

/** The template job, its config naming `uri` as its tracking server, in its own sweep. */
function naming(uri: string, sweep: string): JobData {
  const d = copy();
  const cfg = parse(d.spec.configText) as { tracking: { uri: string | null } };
  cfg.tracking.uri = uri;
  d.spec.configText = stringify(cfg);
  d.spec.sweep = sweep;
  d.tracking = { uri, experiment: 'stolen' };
  return d;
}

const SECRET = 'worker-secret-token-7f3a';

test(
  "regression: a job naming another tracking server never gets the worker's token: the worker's --tracking-uri wins, for the worker and its exp train child",
  { timeout: 300_000 },
  async () => {
    const [evil, own] = await Promise.all([recorder(), recorder()]);
    try {
      const runsDir = join(tempDir('exp-queue-creds-'), 'runs');
      const fresh = naming(evil.uri, 'creds-fresh');
      // A folder that already has a config.yaml naming the other server (as a shared runs folder may): the child must not follow it.
      const seeded = naming(evil.uri, 'creds-seeded');
      const seededDir = join(runsDir, seeded.spec.experiment, seeded.spec.sweep, seeded.spec.entry.dir);
      mkdirSync(seededDir, { recursive: true });
      writeFileSync(join(seededDir, 'config.yaml'), seeded.spec.configText);
      await push({ 'creds-fresh': fresh, 'creds-seeded': seeded });
      const w = await worker(runsDir, { MLFLOW_TRACKING_TOKEN: SECRET }, ['--tracking-uri', own.uri]);
      assert.equal(w.code, 0, w.stderr);
      assert.match(w.stdout, /worker done: 2 completed, 0 failed/);
      assert.match(w.stdout, new RegExp(`the job names tracking server ${evil.uri}; tracked to this worker's server ${own.uri} instead`));
      assert.deepEqual(evil.auth, [], 'the server a job named gets no request at all');
      assert.ok(own.auth.length > 0, "the worker's own server is where tracking goes");
      assert.ok(
        own.auth.every((a) => a === `Bearer ${SECRET}`),
        'with the token',
      );
      const written = parse(readFileSync(join(runsDir, fresh.spec.experiment, fresh.spec.sweep, fresh.spec.entry.dir, 'config.yaml'), 'utf8')) as {
        tracking: { uri: string };
      };
      assert.equal(written.tracking.uri, own.uri, 'the config.yaml the worker writes names the server it is tracked to, so a later exp sync goes there too');
    } finally {
      await Promise.all([evil.close(), own.close()]);
      await queue.obliterate({ force: true });
    }
  },
);

test(
  "regression: a worker with credentials but no tracking server refuses to start; one with neither follows the job's server without credentials",
  { timeout: 300_000 },
  async () => {
    const evil = await recorder();
    try {
      const runsDir = join(tempDir('exp-queue-anon-'), 'runs');
      await push({ 'anon-1': naming(evil.uri, 'anon') });
      for (const v of ['MLFLOW_TRACKING_TOKEN', 'MLFLOW_TRACKING_PASSWORD']) {
        const refused = await worker(runsDir, { [v]: SECRET, MLFLOW_TRACKING_USERNAME: v.endsWith('PASSWORD') ? 'me' : '' });
        assert.equal(refused.code, 2, refused.stdout + refused.stderr);
        assert.match(refused.stderr, new RegExp(`${v}.* set, but this worker has no tracking server of its own.*--tracking-uri.*\\[MLFLOW_CONFIG\\]`, 's'));
      }
      assert.equal(await (await queue.getJob('anon-1'))!.getState(), 'waiting', 'a refused worker takes no job');
      const w = await worker(runsDir, {});
      assert.equal(w.code, 0, w.stderr);
      assert.match(w.stdout, /worker done: 1 completed, 0 failed/);
      assert.ok(evil.auth.length > 0, "the job's server is followed");
      assert.deepEqual(
        evil.auth.filter((a) => a !== undefined),
        [],
        'with no Authorization header',
      );
      assert.ok(!JSON.stringify(evil.auth).includes(SECRET));
    } finally {
      await evil.close();
      await queue.obliterate({ force: true });
    }
  },
);

test('regression: --queue redis://host:port/99999 is a coded QUEUE_URL error (it used database 0 in silence); a malformed database is refused before connecting', () => {
  const base = `redis://127.0.0.1:${redis.port}`;
  const missing = exp(['queue', 'status', '--queue', `${base}/99999`], { cwd: tmp });
  assert.equal(missing.code, 2, missing.stderr);
  assert.match(missing.stderr, /names database 99999, which the Redis there does not have .*it has 16 databases: use 0 to 15.*\[QUEUE_URL\]/s);
  const w = exp(['worker', '--queue', `${base}/16`, '--exit-when-idle'], { cwd: tmp });
  assert.equal(w.code, 2, w.stderr);
  assert.match(w.stderr, /names database 16.*\[QUEUE_URL\]/s);
  for (const db of ['-1', '1.5', 'abc', '1e3', '0x1', '%zz', '99999999999', '1/2', '3?db=4']) {
    const r = exp(['queue', 'status', '--queue', `${base}/${db}`], { cwd: tmp });
    assert.equal(r.code, 2, `${db}: ${r.stderr}`);
    assert.match(r.stderr, /\[QUEUE_URL\]/, db);
  }
  const ok = exp(['queue', 'status', '--queue', `${base}/15`], { cwd: tmp });
  assert.equal(ok.code, 0, ok.stderr);
  assert.match(ok.stdout, /\/15: empty/);
});
