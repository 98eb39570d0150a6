/**
 * The MLflow client against a real tracking server (.venv/bin/mlflow, SQLite store, proxied
 * artifacts): what arrives is read back through the same REST API a user's UI reads.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { MlflowClient, MlflowError, toRecord, type RunInfo } from '../../src/mlflow/client.js';
import { startMlflow, type MlflowServer } from '../helpers/mlflow-server.js';

let server: MlflowServer;
let client: MlflowClient;
let experimentId: string;

before(
  async () => {
    server = await startMlflow();
    console.log(`# mlflow server up in ${server.startMs} ms at ${server.uri}`);
    client = new MlflowClient({ uri: server.uri, backoffMs: 50 });
    experimentId = await client.getOrCreateExperiment('exp-client-test');
  },
  { timeout: 180_000 },
);

after(async () => {
  await server?.dispose();
});

const newRun = (name: string, extra: Partial<Parameters<MlflowClient['createRun']>[0]> = {}): Promise<RunInfo> =>
  client.createRun({ experimentId, runName: name, ...extra });

test('getOrCreateExperiment returns the same id twice, and concurrent creates agree', async () => {
  assert.equal(await client.getOrCreateExperiment('exp-client-test'), experimentId);
  const ids = await Promise.all(Array.from({ length: 6 }, () => client.getOrCreateExperiment('exp-race')));
  assert.equal(new Set(ids).size, 1);
  assert.equal((await client.getExperimentByName('exp-race'))?.experiment_id, ids[0]);
  assert.equal(await client.getExperimentByName('exp-never-created'), undefined);
});

test('createRun sets name, start time and tags', async () => {
  const info = await newRun('r-tags', { startTime: 1_700_000_000_000, tags: { 'mlflow.note.content': '# hi', 'exp.key': 'abc123' } });
  assert.equal(info.status, 'RUNNING');
  const run = await client.getRun(info.run_id);
  assert.equal(run.info.run_name, 'r-tags');
  assert.equal(run.info.start_time, 1_700_000_000_000);
  const tags = toRecord(run.data.tags);
  assert.equal(tags['mlflow.note.content'], '# hi');
  assert.equal(tags['exp.key'], 'abc123');
  assert.equal(tags['mlflow.runName'], 'r-tags');
  await client.setTag(info.run_id, 'exp.status', 'trained');
  assert.equal(toRecord((await client.getRun(info.run_id)).data.tags)['exp.status'], 'trained');
});

test('logBatch splits 2500 metrics and 150 params into requests the server accepts, and all arrive', async () => {
  const { run_id } = await newRun('r-batch');
  const t = 1_700_000_000_000;
  const metrics = Array.from({ length: 2500 }, (_, i) => ({ key: `epoch/m${i % 25}`, value: i / 7, step: Math.floor(i / 25), timestamp: t + i }));
  const params = Object.fromEntries(Array.from({ length: 150 }, (_, i) => [`p.${i}`, i % 2 ? `v${i}` : i]));
  params['long'] = 'x'.repeat(6000); // exactly the limit: arrives whole
  const requests = await client.logBatch(run_id, { metrics, params, tags: { 'exp.phase': 'train' } });
  assert.equal(requests, 3);

  const run = await client.getRun(run_id);
  const got = toRecord(run.data.params);
  assert.equal(Object.keys(got).length, 151);
  assert.equal(got['p.3'], 'v3');
  assert.equal(got['p.4'], '4');
  assert.equal(got['long']!.length, 6000);
  assert.equal(toRecord(run.data.tags)['exp.phase'], 'train');
  assert.equal(run.data.metrics.length, 25); // latest value per key
  let points = 0;
  for (let k = 0; k < 25; k++) {
    const h = await client.getMetricHistory(run_id, `epoch/m${k}`);
    points += h.length;
    assert.deepEqual(
      h.map((m) => m.step).sort((a, b) => a - b),
      Array.from({ length: 100 }, (_, s) => s),
    );
    const last = h.find((m) => m.step === 99)!;
    assert.equal(last.value, (99 * 25 + k) / 7);
    assert.equal(last.timestamp, t + 99 * 25 + k);
  }
  assert.equal(points, 2500);
});

test('NaN round-trips; ±Infinity is stored as ±Number.MAX_VALUE (MLflow clamps it)', async () => {
  const { run_id } = await newRun('r-nan');
  await client.logBatch(run_id, {
    metrics: [
      { key: 'loss', value: NaN, step: 0 },
      { key: 'loss', value: Infinity, step: 1 },
      { key: 'loss', value: -Infinity, step: 2 },
    ],
  });
  const h = (await client.getMetricHistory(run_id, 'loss')).sort((a, b) => a.step - b.step);
  assert.ok(Number.isNaN(h[0]!.value));
  assert.equal(h[1]!.value, Number.MAX_VALUE);
  assert.equal(h[2]!.value, -Number.MAX_VALUE);
});

test('bad keys are refused client-side and nothing of the batch is logged', async () => {
  const { run_id } = await newRun('r-bad');
  await assert.rejects(client.logBatch(run_id, { metrics: [{ key: 'ok', value: 1 }], params: { 'bad key!': 1, ['k'.repeat(251)]: 2 } }), (e: unknown) => {
    assert.ok(e instanceof MlflowError);
    assert.equal(e.kind, 'validation');
    assert.match(e.message, /bad key!/);
    assert.match(e.message, /250/);
    return true;
  });
  await assert.rejects(client.logBatch(run_id, { params: { p: 'y'.repeat(6001) } }), (e: unknown) => e instanceof MlflowError && e.kind === 'validation');
  const run = await client.getRun(run_id);
  assert.deepEqual([run.data.metrics, run.data.params], [[], []]);
});

test('server errors are typed: unknown run, changed param', async () => {
  await assert.rejects(
    client.getRun('0'.repeat(32)),
    (e: unknown) => e instanceof MlflowError && e.kind === 'http' && e.status === 404 && e.errorCode === 'RESOURCE_DOES_NOT_EXIST' && e.route === 'runs/get',
  );
  const { run_id } = await newRun('r-param');
  await client.logBatch(run_id, { params: { lr: 0.001 } });
  await client.logBatch(run_id, { params: { lr: 0.001 } }); // the same value again is fine (a retried batch)
  await assert.rejects(
    client.logBatch(run_id, { params: { lr: 0.01 } }),
    (e: unknown) => e instanceof MlflowError && e.status === 400 && e.errorCode === 'INVALID_PARAMETER_VALUE' && e.route === 'runs/log-batch',
  );
});

test('updateRun sets status and end time', async () => {
  const { run_id } = await newRun('r-status');
  const done = await client.updateRun(run_id, 'FINISHED', 1_700_000_123_000);
  assert.equal(done.status, 'FINISHED');
  const run = await client.getRun(run_id);
  assert.equal(run.info.status, 'FINISHED');
  assert.equal(run.info.end_time, 1_700_000_123_000);
  const failed = await newRun('r-failed');
  assert.equal((await client.updateRun(failed.run_id, 'FAILED')).status, 'FAILED');
  assert.ok(((await client.getRun(failed.run_id)).info.end_time ?? 0) > 0);
});

test('nested runs: children carry mlflow.parentRunId and searchRuns finds them, across pages', async () => {
  const parent = await newRun('sweep');
  const kids = [];
  for (const n of ['a', 'b', 'c']) kids.push(await newRun(`child-${n}`, { parentRunId: parent.run_id }));
  await newRun('unrelated');
  const filter = `tags.\`mlflow.parentRunId\` = '${parent.run_id}'`;
  const all = await client.searchAllRuns({ experimentIds: [experimentId], filter, maxResults: 2 });
  assert.deepEqual(all.map((r) => r.info.run_id).sort(), kids.map((k) => k.run_id).sort());
  const first = await client.searchRuns({ experimentIds: [experimentId], filter, maxResults: 2 });
  assert.equal(first.runs.length, 2);
  assert.ok(first.nextPageToken);
  const named = await client.searchAllRuns({ experimentIds: [experimentId], filter: "attributes.run_name = 'child-b'" });
  assert.deepEqual(
    named.map((r) => r.info.run_id),
    [kids[1]!.run_id],
  );
});

test('artifacts upload and download byte for byte, by run id or artifact URI', async () => {
  const info = await newRun('r-artifacts');
  // A PNG signature, every byte value, and random bytes: nothing may be re-encoded on the way.
  const png = Buffer.concat([
    Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]),
    Buffer.from(Array.from({ length: 256 }, (_, i) => i)),
    randomBytes(300_000),
  ]);
  await client.uploadArtifact(info.run_id, 'plots/curves.png', png);
  await client.uploadArtifact(info.artifact_uri, 'summary.json', '{"f2": 0.88}\n');
  await client.uploadArtifact(info.run_id, 'odd names/a b?c+d&e.txt', 'odd');
  assert.ok(Buffer.from(await client.downloadArtifact(info.run_id, 'plots/curves.png')).equals(png));
  assert.equal(Buffer.from(await client.downloadArtifact(info.artifact_uri, 'summary.json')).toString(), '{"f2": 0.88}\n');
  assert.equal(Buffer.from(await client.downloadArtifact(info.run_id, 'odd names/a b?c+d&e.txt')).toString(), 'odd');
  const root = await client.listArtifacts(info.run_id);
  assert.deepEqual(root.map((f) => [f.path, f.isDir]).sort(), [
    ['odd names', true],
    ['plots', true],
    ['summary.json', false],
  ]);
  assert.deepEqual(await client.listArtifacts(info.run_id, 'plots'), [{ path: 'plots/curves.png', isDir: false, fileSize: png.length }]);
  await assert.rejects(client.downloadArtifact(info.run_id, 'missing.bin'), (e: unknown) => e instanceof MlflowError && e.status === 404);
});

test('the test server stops and restarts on the same port and store', { timeout: 180_000 }, async () => {
  const { run_id } = await newRun('r-outage');
  await server.stop();
  await assert.rejects(new MlflowClient({ uri: server.uri, retries: 0 }).getRun(run_id), (e: unknown) => e instanceof MlflowError && e.kind === 'network');
  await server.restart();
  console.log(`# mlflow server restarted in ${server.startMs} ms`);
  assert.equal((await client.getRun(run_id)).info.run_name, 'r-outage');
});
