/**
 * The sink's side of a queued point changing hands, against a real MLflow server, with run
 * folders written by hand (config.yaml from the real planner, events through EventLog, small
 * fake checkpoint files): superseded takeover uploads are removed once a newer complete one is
 * there, a late upload of an older attempt never replaces a newer LATEST, and the late end of
 * an earlier attempt never turns a run another attempt finished back to KILLED. Also how a
 * launcher settles a child stopped before it wrote its own run.json.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, request } from 'node:http';
import { join } from 'node:path';
import { startMlflow, type MlflowServer } from '../helpers/mlflow-server.js';
import { tempDir } from '../helpers/cli.js';
import { MlflowClient, MlflowError, type ClientFor } from '../../src/mlflow/client.js';
import { EventLog, readEvents } from '../../src/track/events.js';
import { writePlan } from '../../src/store/sweep.js';
import { planExperiment } from '../../src/sweep/plan.js';
import { syncRun } from '../../src/track/sync.js';
import { readPoint, readRunConfig, writePoint } from '../../src/store/run.js';
import { settleAfterExit } from '../../src/store/status.js';
import { flushMsFor, LiveSync } from '../../src/track/live.js';
import { readRunState } from '../../src/track/sink-state.js';
import { flatten } from '../../src/util/object.js';

let server: MlflowServer;
let api: MlflowClient;
let root: string;

/** A real client that can fail its Nth upload from now (a timeout mid-checkpoint, as a slow server gives). */
class FlakyClient extends MlflowClient {
  failUploadIn = 0;
  override async uploadArtifact(target: string, relPath: string, bytes: Uint8Array | string): Promise<void> {
    if (this.failUploadIn > 0 && --this.failUploadIn === 0)
      throw new MlflowError({ code: 'MLFLOW_TIMEOUT', route: 'upload', message: 'no answer (simulated)' });
    return super.uploadArtifact(target, relPath, bytes);
  }
}
let client: FlakyClient;
const clients: ClientFor = () => client;

before(
  async () => {
    server = await startMlflow();
    api = new MlflowClient({ uri: server.uri, backoffMs: 50 });
    client = new FlakyClient({ uri: server.uri, retries: 0, backoffMs: 20, timeoutMs: 10_000, breakerMs: 0 });
    root = tempDir('exp-takeover-sync-');
    writeFileSync(
      join(root, 'exp.yaml'),
      [
        'name: tksync',
        'data: { path: ./data, image_size: 32 }',
        'model: { weights: none, frozen_blocks: 4 }',
        'training: { epochs: 3 }',
        `tracking: { uri: '${server.uri}' }`,
        'sweep: { grid: { training.learning_rate: [0.001] } }',
      ].join('\n') + '\n',
    );
  },
  { timeout: 180_000 },
);

after(async () => {
  await server?.dispose();
  if (root) rmSync(root, { recursive: true, force: true });
});

/** One planned run folder in runs folder `runs`, tracked in MLflow experiment `experiment` (on `uri`, default the server). */
function makeRun(runs: string, sweep: string, experiment: string, uri?: string): string {
  const r = planExperiment(join(root, 'exp.yaml'), { set: [`tracking.experiment=${experiment}`, ...(uri ? [`tracking.uri=${uri}`] : [])] });
  assert.ok(r.plan, JSON.stringify(r.problems));
  const { dir, index } = writePlan(join(root, runs), r.plan, sweep);
  return join(dir, index.points[0]!.dir);
}

function started(dir: string, time: number, resumed = false): EventLog {
  const point = readPoint(dir);
  writeFileSync(join(dir, 'run.json'), JSON.stringify({ key: point.key, name: point.name, status: 'running', attempts: 1, created: 'x' }));
  const log = new EventLog(dir);
  log.append(
    {
      type: 'run_started',
      key: point.key,
      name: point.name,
      experiment: 'tksync',
      sweep: point.sweep,
      params: flatten(readRunConfig(dir)),
      tags: { 'exp.uid': point.uid, 'exp.swept': '[]' },
      resumed,
    },
    time,
  );
  return log;
}

/** What training does for a queued run's checkpoint: stage its files, log the event. */
function checkpoint(dir: string, log: EventLog, label: number): void {
  const staged = join(dir, 'checkpoints', `upload-${label}`);
  mkdirSync(staged, { recursive: true });
  for (const f of ['a.bin', 'b.bin', 'state.json']) writeFileSync(join(staged, f), f === 'state.json' ? `{"label": ${label}}` : randomBytes(2048));
  log.append({ type: 'checkpoint', path: `checkpoints/upload-${label}`, label: String(label) });
}

const epoch = (log: EventLog, e: number): void =>
  void log.append({ type: 'epoch', epoch: e, metrics: { loss: 1 / e, val_loss: 2 / e } }, 1_700_000_000_000 + e);

async function takeoverListing(runId: string): Promise<string[]> {
  return (await api.listArtifacts(runId, 'takeover')).map((f) => f.path).sort();
}

test('regression: a takeover upload that failed part-way and was superseded is removed once a newer one is complete (22 x 55 MB stayed)', async () => {
  const dir = makeRun('runs-partial', 's1', 'tk-partial');
  const log = started(dir, 1_700_000_000_000);
  epoch(log, 1);
  checkpoint(dir, log, 1000);
  client.failUploadIn = 2; // the second file of checkpoint 1000 gets no answer
  const first = await syncRun(dir, clients);
  assert.equal(first.outcome, 'failed', 'the upload failed part-way');
  const runId = first.runId!;
  assert.deepEqual(await takeoverListing(runId), ['takeover/1000'], 'half of checkpoint 1000 is on the server, not named by LATEST');

  // The next checkpoint supersedes it (training removes the older staging folder).
  rmSync(join(dir, 'checkpoints', 'upload-1000'), { recursive: true, force: true });
  epoch(log, 2);
  checkpoint(dir, log, 2000);
  const second = await syncRun(dir, clients);
  assert.equal(second.outcome, 'sent', second.error);
  assert.deepEqual(await takeoverListing(runId), ['takeover/2000', 'takeover/LATEST'], 'only the complete checkpoint LATEST names is kept');
  assert.equal(Buffer.from(await api.downloadArtifact(runId, 'takeover/LATEST')).toString(), '2000');
  assert.equal((await api.listArtifacts(runId, 'takeover/2000')).length, 3);

  // And the one before is removed once the next is complete, never before.
  checkpoint(dir, log, 3000);
  assert.equal((await syncRun(dir, clients)).outcome, 'sent');
  assert.deepEqual(await takeoverListing(runId), ['takeover/3000', 'takeover/LATEST']);
});

test("a late upload of an earlier attempt's checkpoint never replaces a newer LATEST (another worker's), and is removed", async () => {
  const dir = makeRun('runs-late', 's2', 'tk-late');
  const log = started(dir, 1_700_000_000_000);
  epoch(log, 1);
  assert.equal((await syncRun(dir, clients)).outcome, 'sent');
  const runId = (await syncRun(dir, clients)).runId!;
  // The worker that took the point over has uploaded a newer checkpoint meanwhile.
  await api.uploadArtifact(runId, 'takeover/5000/state.json', '{"label": 5000}');
  await api.uploadArtifact(runId, 'takeover/LATEST', '5000');
  checkpoint(dir, log, 4000);
  assert.equal((await syncRun(dir, clients)).outcome, 'sent');
  assert.equal(Buffer.from(await api.downloadArtifact(runId, 'takeover/LATEST')).toString(), '5000');
  assert.deepEqual(await takeoverListing(runId), ['takeover/5000', 'takeover/LATEST']);
});

test('regression: the late KILLED of a dead worker\'s child does not undo the FINISHED of the worker that took its point over (left "RUNNING"/KILLED)', async () => {
  // A: the first worker's folder. Its child stopped when A died; its end reaches the server late.
  const a = makeRun('runs-a', 's3', 'tk-end');
  const logA = started(a, 1_700_000_000_000);
  epoch(logA, 1);
  assert.equal((await syncRun(a, clients)).outcome, 'sent');
  // B: the folder the second worker wrote for the same point (same uid), resumed and finished.
  const b = makeRun('runs-b', 's3', 'tk-end');
  writePoint(b, { ...readPoint(b), uid: readPoint(a).uid });
  const logB = started(b, 1_700_000_005_000, true);
  for (const e of [1, 2, 3]) epoch(logB, e);
  logB.append({ type: 'run_ended', status: 'completed', reason: 'all epochs done' });
  const done = await syncRun(b, clients);
  assert.equal(done.outcome, 'sent', done.error);
  assert.equal((await api.getRun(done.runId!)).info.status, 'FINISHED');

  logA.append({ type: 'run_ended', status: 'killed', reason: 'the launcher went away' });
  const late = await syncRun(a, clients);
  assert.equal(late.runId, done.runId, 'one MLflow run for the point');
  assert.equal(late.outcome, 'sent');
  assert.match(late.warnings.join('\n'), /finished by a later attempt; it stays FINISHED/);
  assert.equal((await api.getRun(done.runId!)).info.status, 'FINISHED');
});

test('regression: a child stopped before it wrote run.json is killed, not failed (also over an earlier attempt\'s "failed")', () => {
  const dir = makeRun('runs-settle', 's4', 'tk-settle');
  const stop = { code: null, signal: 'SIGINT' as const };
  assert.equal(settleAfterExit(dir, stop, true, 4242), 'killed');
  assert.equal(settleAfterExit(dir, stop, false, 4242), 'failed');
  // An earlier attempt failed (then `queue retry-failed`); this one was stopped before it wrote its own record.
  writeFileSync(join(dir, 'run.json'), JSON.stringify({ key: 'k', name: 'n', status: 'failed', reason: 'old', attempts: 1, created: 'x', pid: 1111 }));
  assert.equal(settleAfterExit(dir, stop, true, 4242), 'killed');
  assert.equal(JSON.parse(readFileSync(join(dir, 'run.json'), 'utf8')).reason, 'old', 'the earlier record is left as it was');
  // Its own record is believed.
  writeFileSync(join(dir, 'run.json'), JSON.stringify({ key: 'k', name: 'n', status: 'failed', reason: 'mine', attempts: 2, created: 'x', pid: 4242 }));
  assert.equal(settleAfterExit(dir, stop, true, 4242), 'failed');
});

/** A real HTTP hop in front of the MLflow server that answers each request `delayMs` late (a slow or distant server). */
async function slowHop(delayMs: number): Promise<{ uri: string; close: () => void }> {
  const target = new URL(server.uri);
  const hop = createServer((req, res) => {
    setTimeout(() => {
      const up = request(
        { host: target.hostname, port: target.port, path: req.url, method: req.method, headers: { ...req.headers, host: target.host } },
        (r) => {
          res.writeHead(r.statusCode ?? 502, r.headers);
          r.pipe(res);
        },
      );
      up.on('error', () => res.destroy());
      req.pipe(up);
    }, delayMs);
  });
  await new Promise<void>((r) => hop.listen(0, '127.0.0.1', r));
  return { uri: `http://127.0.0.1:${(hop.address() as { port: number }).port}`, close: () => void hop.close() };
}

test('regression: a queued run sends its end before it exits, also when that takes more than one sync (a finished point was left RUNNING)', async () => {
  const hop = await slowHop(200);
  try {
    const dir = makeRun('runs-flush', 's5', 'tk-flush', hop.uri);
    const log = started(dir, 1_700_000_000_000);
    for (const e of [1, 2, 3]) epoch(log, e);
    // The end of a run: several artifacts (each a request or more, 200 ms late), then run_ended.
    for (const f of ['a', 'b', 'c', 'd', 'e', 'f']) {
      writeFileSync(join(dir, `${f}.txt`), f);
      log.append({ type: 'artifact', path: `${f}.txt` });
    }
    log.append({ type: 'run_ended', status: 'completed', reason: 'all epochs done' });
    // What a queue worker's child does last: no launcher syncs the folder after it exits.
    await new LiveSync(dir, {}).flush(flushMsFor('queue'));
    const target = { trackingUri: hop.uri, experiment: 'tk-flush' };
    const state = readRunState(dir, target);
    assert.equal(state?.cursor, readEvents(dir).events.at(-1)!.seq, 'every event was sent');
    assert.equal((await api.getRun(state!.runId!)).info.status, 'FINISHED');
  } finally {
    hop.close();
  }
});
