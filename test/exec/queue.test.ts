/**
 * Sweeps on a real Redis (Debian's redis-server) through BullMQ, trained by real `exp worker`
 * processes, tracked by a real MLflow server: enqueueing twice adds nothing; two workers drain
 * a sweep; a worker killed with SIGKILL mid-point hands its point to another, which resumes it
 * from the checkpoint (from the shared runs folder, or from MLflow's artifact store when each
 * worker has its own), and the point is one MLflow run with one continuous history; failed
 * points are retried on request; a password-protected Redis works and its password is never
 * shown.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { BIN, exp, expIn, tempDir } from '../helpers/cli.js';
import { startRedis, type RedisServer } from '../helpers/redis-server.js';
import { startMlflow, type MlflowServer } from '../helpers/mlflow-server.js';
import { tinyExperiment, trainingBackends } from '../helpers/training.js';
import { MlflowClient, toRecord, type Run } from '../../src/mlflow/client.js';
import { readRunRecord, runFolderBusy } from '../../src/store/run.js';
import { Redis } from 'ioredis';

let redis: RedisServer;
let mlflow: MlflowServer;
let tmp: string;
let backend: string;

before(
  async () => {
    [redis, mlflow] = await Promise.all([startRedis(), startMlflow()]);
    tmp = tempDir('exp-queue-');
    backend = (await trainingBackends())[0]!;
  },
  { timeout: 180_000 },
);

after(async () => {
  await redis?.stop();
  await mlflow?.dispose();
});

/** A sweep of two points, `epochs` each, tracked in MLflow experiment `experiment`. */
function sweepFile(name: string, experiment: string, epochs = 6, lrs = '[0.001, 0.0005]'): string {
  return tinyExperiment(tmp, {
    backend,
    name,
    epochs,
    extra: `tracking: { uri: '${mlflow.uri}', experiment: ${experiment} }\nsweep: { grid: { training.learning_rate: ${lrs} } }`,
  });
}

function startWorker(runsDir: string, name: string, extra: string[] = [], url = redis.url): { child: ChildProcess; log: () => string } {
  let log = '';
  const child = spawn(
    process.execPath,
    [BIN, 'worker', '--queue', url, '--runs-dir', runsDir, '--name', name, '--lock-seconds', '4', '--stalled-seconds', '2', ...extra],
    {
      cwd: tmp,
      env: { ...process.env, MLFLOW_TRACKING_URI: '' },
      stdio: ['ignore', 'pipe', 'pipe'],
    },
  );
  child.stdout!.on('data', (d: Buffer) => {
    log += d;
  });
  child.stderr!.on('data', (d: Buffer) => {
    log += d;
  });
  return { child, log: () => log };
}

const exited = (c: ChildProcess): Promise<number | null> => new Promise((r) => (c.exitCode !== null ? r(c.exitCode) : c.once('exit', (code) => r(code))));

/** Run folders under a runs folder. */
const runFolders = (runsDir: string): string[] => {
  if (!existsSync(runsDir)) return [];
  return readdirSync(runsDir).flatMap((e) =>
    readdirSync(join(runsDir, e)).flatMap((s) =>
      readdirSync(join(runsDir, e, s), { withFileTypes: true })
        .filter((d) => d.isDirectory())
        .map((d) => join(runsDir, e, s, d.name)),
    ),
  );
};
const epochsIn = (dir: string): number =>
  existsSync(join(dir, 'metrics.jsonl')) ? readFileSync(join(dir, 'metrics.jsonl'), 'utf8').trim().split('\n').filter(Boolean).length : 0;

async function waitFor<T>(what: string, f: () => T | undefined | false | Promise<T | undefined | false>, ms = 120_000): Promise<T> {
  const deadline = Date.now() + ms;
  for (;;) {
    const v = await f();
    if (v) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

async function childRuns(experiment: string): Promise<{ parents: Run[]; children: Run[] }> {
  const api = new MlflowClient({ uri: mlflow.uri });
  const id = (await api.getExperimentByName(experiment))!.experiment_id;
  const all = await api.searchAllRuns({ experimentIds: [id] });
  const isChild = (r: Run): boolean => toRecord(r.data.tags)['mlflow.parentRunId'] !== undefined;
  return { parents: all.filter((r) => !isChild(r)), children: all.filter(isChild) };
}

test('enqueueing the same sweep twice adds no job; exp queue status lists them', async () => {
  const file = sweepFile('twice', 'q-twice');
  const first = await expIn(['run', file, '--queue', redis.url, '--detach', '--runs-dir', join(tmp, 'sub-twice')], { cwd: tmp });
  assert.equal(first.code, 0, first.stderr);
  assert.match(first.stdout, /Queued 2 points on redis:\/\/127\.0\.0\.1:\d+\n/);
  const again = await expIn(['run', file, '--queue', redis.url, '--detach', '--runs-dir', join(tmp, 'sub-twice')], { cwd: tmp });
  assert.match(again.stdout, /Queued 0 points .*\(2 already queued\)/);
  const status = await expIn(['queue', 'status', '--queue', redis.url, '--json'], { cwd: tmp });
  const rows = (JSON.parse(status.stdout) as { sweep: string; state: string }[]).filter((r) => r.state === 'waiting');
  assert.equal(rows.length, 2);
  // Drain them, so later tests start from an empty queue.
  const w = startWorker(join(tmp, 'w-twice'), 'drain', ['--exit-when-idle']);
  assert.equal(await exited(w.child), 0, w.log());
  assert.match(w.log(), /worker done: 2 completed, 0 failed/);
});

test(
  'a worker killed with SIGKILL mid-point: another worker resumes it from the checkpoint in MLflow (no shared storage); one MLflow run, one continuous history',
  { timeout: 300_000 },
  async () => {
    const file = sweepFile('takeover', 'q-takeover');
    assert.equal((await expIn(['run', file, '--queue', redis.url, '--detach', '--runs-dir', join(tmp, 'sub-takeover')], { cwd: tmp })).code, 0);
    const a = startWorker(join(tmp, 'wa'), 'wa');
    const victim = await waitFor('worker A to finish 2 epochs of a point', () => runFolders(join(tmp, 'wa')).find((d) => epochsIn(d) >= 2));
    a.child.kill('SIGKILL');
    await exited(a.child);
    // A's child sees its launcher gone and stops at its next batch, its position saved, then
    // sends its log; it has exited when it releases the folder (B, on another machine, would
    // wait the lock's 30 s; here the wait is for the event).
    await waitFor(
      'the orphaned child to stop and exit',
      () => (!runFolderBusy(victim).busy && readRunRecord(victim)?.status !== 'running') || undefined,
      120_000,
    );
    const b = startWorker(join(tmp, 'wb'), 'wb', ['--exit-when-idle']);
    assert.equal(await exited(b.child), 0, b.log());
    assert.match(b.log(), /resuming another worker's checkpoint/);
    assert.match(b.log(), /worker done: 2 completed, 0 failed/);

    const moved = join(tmp, 'wb', ...victim.split('/').slice(-3));
    assert.match(readFileSync(join(moved, 'train.log'), 'utf8'), /resuming from checkpoints\/last (inside|after) epoch/);
    // Regression: a child run was left RUNNING under load (the child's final sync was cut at 2 s
    // and no one synced after it). B's children have exited, so what is there now is final.
    const { parents, children } = await childRuns('q-takeover');
    assert.deepEqual([parents.length, children.length], [1, 2], 'one parent, one child run per point');
    assert.equal(parents[0]!.info.status, 'FINISHED');
    const api = new MlflowClient({ uri: mlflow.uri });
    for (const c of children) {
      assert.equal(c.info.status, 'FINISHED', `${c.info.run_name}: ${JSON.stringify(toRecord(c.data.tags)['exp.status'])}`);
      for (const key of ['loss', 'val_loss', 'val_fbeta']) {
        const steps = (await api.getMetricHistory(c.info.run_id, key)).map((m) => m.step).sort((x, y) => x - y);
        assert.deepEqual(steps, [1, 2, 3, 4, 5, 6], `${c.info.run_name} ${key}: every epoch once`);
      }
      assert.equal(
        (await api.listArtifacts(c.info.run_id)).some((f) => f.path === 'takeover'),
        false,
        'the takeover checkpoints are removed once the run ends',
      );
    }
  },
);

test(
  'a worker killed mid-point on a shared runs folder: another worker resumes it from the run folder; the point is there once',
  { timeout: 300_000 },
  async () => {
    const file = sweepFile('shared', 'q-shared');
    const shared = join(tmp, 'shared-runs');
    assert.equal((await expIn(['run', file, '--queue', redis.url, '--detach', '--runs-dir', shared], { cwd: tmp })).code, 0);
    const a = startWorker(shared, 'sa');
    const victim = await waitFor('worker A to finish 2 epochs', () => runFolders(shared).find((d) => epochsIn(d) >= 2));
    a.child.kill('SIGKILL');
    await exited(a.child);
    const b = startWorker(shared, 'sb', ['--exit-when-idle']);
    assert.equal(await exited(b.child), 0, b.log());
    assert.match(b.log(), /worker done: 2 completed, 0 failed/);
    assert.equal(runFolders(shared).length, 2, 'one folder per point');
    const rec = JSON.parse(readFileSync(join(victim, 'run.json'), 'utf8')) as { status: string; attempts: number };
    assert.deepEqual([rec.status, rec.attempts], ['completed', 2]);
    assert.match(readFileSync(join(victim, 'train.log'), 'utf8'), /resuming from checkpoints\/last/);
    assert.equal(epochsIn(victim), 6);
    const { children } = await childRuns('q-shared');
    assert.equal(children.length, 2);
  },
);

test(
  'regression: SIGTERM to a worker right after it takes a job (before the child writes run.json) puts the job back in the queue, not in failed',
  { timeout: 300_000 },
  async () => {
    const file = sweepFile('early', 'q-early', 1);
    assert.equal((await expIn(['run', file, '--queue', redis.url, '--detach', '--runs-dir', join(tmp, 'sub-early')], { cwd: tmp })).code, 0);
    const w = startWorker(join(tmp, 'w-early'), 'early');
    // The child is spawned when the worker says so; it writes run.json only seconds later (after loading TensorFlow.js).
    await waitFor('the worker to start a point', () => /: started \(job /.test(w.log()));
    w.child.kill('SIGTERM');
    assert.equal(await exited(w.child), 0, w.log());
    assert.match(w.log(), /back to the queue/);
    assert.match(w.log(), /worker done: 0 completed, 0 failed, 1 put back in the queue/);
    const sweep = readdirSync(join(tmp, 'sub-early', 'early'))[0]!;
    const status = JSON.parse((await expIn(['queue', 'status', '--queue', redis.url, '--sweep', sweep, '--json'], { cwd: tmp })).stdout) as { state: string }[];
    assert.deepEqual(
      status.map((r) => r.state),
      ['waiting', 'waiting'],
    );
    // The worker restarted takes it (and the other point) without `queue retry-failed`.
    const again = startWorker(join(tmp, 'w-early'), 'early-2', ['--exit-when-idle']);
    assert.equal(await exited(again.child), 0, again.log());
    assert.match(again.log(), /worker done: 2 completed, 0 failed/);
  },
);

test(
  'regression: a following submitter whose Redis lost its jobs (restarted without persistence, FLUSHALL) says so and puts them back; the sweep ends (it polled forever)',
  { timeout: 300_000 },
  async () => {
    const own = await startRedis();
    let submitter: ChildProcess | undefined;
    try {
      const file = tinyExperiment(tmp, { backend, name: 'lost', epochs: 1, extra: 'sweep: { grid: { training.learning_rate: [0.001, 0.0005] } }' });
      let out = '';
      submitter = spawn(process.execPath, [BIN, 'run', file, '--queue', own.url, '--runs-dir', join(tmp, 'sub-lost')], {
        cwd: tmp,
        env: { ...process.env, MLFLOW_TRACKING_URI: '' },
        stdio: ['ignore', 'pipe', 'pipe'],
      });
      submitter.stdout!.on('data', (d: Buffer) => (out += d));
      submitter.stderr!.on('data', (d: Buffer) => (out += d));
      await waitFor('the submitter to follow both jobs', () => (out.match(/: waiting\n/g) ?? []).length >= 2);
      const r = new Redis(own.port, '127.0.0.1', { lazyConnect: true, maxRetriesPerRequest: 1 });
      await r.connect();
      await r.flushall();
      r.disconnect();
      await waitFor('the submitter to notice', () => /the queue lost 2 unfinished jobs of this sweep/.test(out), 60_000);
      const w = startWorker(join(tmp, 'w-lost'), 'lost', ['--exit-when-idle'], own.url);
      assert.equal(await exited(w.child), 0, w.log());
      assert.match(w.log(), /worker done: 2 completed, 0 failed/);
      assert.equal(await exited(submitter), 0, out);
      assert.match(out, /\n2 completed, 0 failed\n/);
    } finally {
      if (submitter?.exitCode === null) submitter.kill('SIGKILL'); // it would poll on forever
      await own.stop();
    }
  },
);

test('a failed point fails its job without stopping the others; exp queue retry-failed puts it back', { timeout: 300_000 }, async () => {
  // The second point's weights file is not HDF5: it passes the submitter's checks, then fails in training.
  writeFileSync(join(tmp, 'broken.h5'), 'not an hdf5 file');
  const file = tinyExperiment(tmp, {
    backend,
    name: 'failing',
    epochs: 2,
    extra: `tracking: { uri: '${mlflow.uri}', experiment: q-failing }\nsweep: { grid: { model.weights: [none, ${join(tmp, 'broken.h5')}] } }`,
  });
  assert.equal((await expIn(['run', file, '--queue', redis.url, '--detach', '--runs-dir', join(tmp, 'sub-failing')], { cwd: tmp })).code, 0);
  const w = startWorker(join(tmp, 'wf'), 'wf', ['--exit-when-idle']);
  assert.equal(await exited(w.child), 0, w.log());
  assert.match(w.log(), /worker done: 1 completed, 1 failed/);
  const status = JSON.parse(
    (await expIn(['queue', 'status', '--queue', redis.url, '--sweep', readdirSync(join(tmp, 'sub-failing', 'failing'))[0]!, '--json'], { cwd: tmp })).stdout,
  ) as { state: string; reason: string | null }[];
  assert.deepEqual(status.map((r) => r.state).sort(), ['completed', 'failed']);
  assert.match(status.find((r) => r.state === 'failed')!.reason!, /broken\.h5/);
  const retry = await expIn(['queue', 'retry-failed', '--queue', redis.url], { cwd: tmp });
  assert.match(retry.stdout, /^1 failed point back to waiting/);
  const after = JSON.parse((await expIn(['queue', 'status', '--queue', redis.url, '--json'], { cwd: tmp })).stdout) as { state: string }[];
  assert.ok(after.some((r) => r.state === 'waiting'));
  // Leave the queue empty for whoever comes next.
  const w2 = startWorker(join(tmp, 'wf'), 'wf2', ['--exit-when-idle']);
  await exited(w2.child);
});

test(
  'regression: a password-protected Redis works; a wrong password is a coded error, and the password is never shown (ioredis printed it)',
  { timeout: 60_000 },
  async () => {
    const secured = await startRedis({ password: 's3cr3t-pw' });
    try {
      const ok = exp(['queue', 'status', '--queue', secured.url], { cwd: tmp });
      assert.equal(ok.code, 0, ok.stderr);
      assert.match(ok.stdout, /redis:\/\/:\*\*\*@127\.0\.0\.1:\d+: empty/);
      const wrong = exp(['queue', 'status', '--queue', secured.url.replace('s3cr3t-pw', 'nope-pw')], { cwd: tmp });
      assert.equal(wrong.code, 1);
      assert.match(wrong.stderr, /cannot reach the queue at redis:\/\/:\*\*\*@.*\[QUEUE_UNREACHABLE\]/s);
      for (const out of [ok.stdout, ok.stderr, wrong.stdout, wrong.stderr]) assert.ok(!out.includes('s3cr3t') && !out.includes('nope-pw'), out);
      const badUrl = exp(['queue', 'status', '--queue', 'http://x'], { cwd: tmp });
      assert.deepEqual([badUrl.code, /\[QUEUE_URL\]/.test(badUrl.stderr)], [2, true]);
    } finally {
      await secured.stop();
    }
  },
);
