/**
 * The MLflow sink against a real tracking server (.venv/bin/mlflow): run folders are built by
 * hand (config.yaml from the real planner, events through EventLog, small fake artifacts), so
 * no training is needed, and everything is read back through the REST API a user's UI reads.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { startMlflow, type MlflowServer } from '../helpers/mlflow-server.js';
import { tempDir } from '../helpers/cli.js';
import { MlflowClient, MlflowError, toRecord, type CreateRunInput, type BatchInput, type Run } from '../../src/mlflow/client.js';
import { EventLog, readEvents } from '../../src/track/events.js';
import { writePlan } from '../../src/store/sweep.js';
import type { SweepIndexEntry } from '../../src/store/types.js';
import { planExperiment } from '../../src/sweep/plan.js';
import { syncRun } from '../../src/track/sync.js';
import type { ClientFor } from '../../src/mlflow/client.js';
import { paramsOf } from '../../src/track/sync-map.js';
import { folderStatus, syncFolders } from '../../src/track/sync-folders.js';
import { main } from '../../src/cli/main.js';
import { flatten } from '../../src/util/object.js';
import { readPoint, readRunConfig } from '../../src/store/run.js';

let server: MlflowServer;
let api: MlflowClient; // for reading back
let root: string;
const COMMIT = '0123456789abcdef0123456789abcdef01234567';
const T0 = 1_700_000_000_000;
const METRICS = ['loss', 'val_loss', 'fbeta', 'val_fbeta'] as const;

/** A client that records what it sends, and can lose the answer of its next write (the request still lands). */
class RecordingClient extends MlflowClient {
  batches: BatchInput[] = [];
  creates = 0;
  /** The next calls of these kinds land on the server, then fail as if their answer was lost. */
  lose: ('logBatch' | 'createRun')[] = [];
  private maybeLose(what: 'logBatch' | 'createRun'): void {
    if (this.lose[0] !== what) return;
    this.lose.shift();
    throw new MlflowError({ code: 'MLFLOW_TIMEOUT', route: what, message: 'answer lost (simulated)' });
  }
  override async logBatch(runId: string, input: BatchInput): Promise<number> {
    this.batches.push(input);
    const n = await super.logBatch(runId, input);
    this.maybeLose('logBatch');
    return n;
  }
  override async createRun(input: CreateRunInput): ReturnType<MlflowClient['createRun']> {
    this.creates++;
    const info = await super.createRun(input);
    this.maybeLose('createRun');
    return info;
  }
}

let client: RecordingClient;
const clients: ClientFor = () => client;

before(
  async () => {
    server = await startMlflow();
    console.log(`# mlflow server up in ${server.startMs} ms at ${server.uri}`);
    api = new MlflowClient({ uri: server.uri, backoffMs: 50 });
    // A short circuit breaker: the outage test restarts the server within this client's life.
    client = new RecordingClient({ uri: server.uri, retries: 1, backoffMs: 20, timeoutMs: 10_000, breakerMs: 2000 });
    root = tempDir('exp-sync-');
    writeFileSync(
      join(root, 'exp.yaml'),
      [
        'name: synctest',
        'data: { path: ./data, image_size: 32 }',
        'model: { weights: none, frozen_blocks: 4 }',
        'training: { epochs: 3 }',
        `tracking: { uri: '${server.uri}' }`,
        'sweep: { grid: { training.learning_rate: [0.001, 0.0005] } }',
      ].join('\n') + '\n',
    );
  },
  { timeout: 180_000 },
);

after(async () => {
  await server?.dispose();
  if (root) rmSync(root, { recursive: true, force: true });
});

interface Sweep {
  dir: string;
  runs: string[];
  points: SweepIndexEntry[];
}

/** Plans the test experiment into runs/<synctest>/<sweep>, tracked in MLflow experiment `experiment`. */
function makeSweep(sweep: string, experiment: string): Sweep {
  const r = planExperiment(join(root, 'exp.yaml'), { set: [`tracking.experiment=${experiment}`] });
  assert.ok(r.plan, JSON.stringify(r.problems));
  const { dir, index } = writePlan(join(root, 'runs'), r.plan, sweep);
  return { dir, runs: index.points.map((p) => join(dir, p.dir)), points: index.points };
}

const metricValue = (run: number, epoch: number, k: number): number => 1 / epoch + run * 0.01 + k * 0.1;

/** What training writes at the start of an attempt: run.json and run_started. */
function start(s: Sweep, i: number, time: number, resumed = false): EventLog {
  const dir = s.runs[i]!;
  const p = s.points[i]!;
  writeFileSync(
    join(dir, 'run.json'),
    JSON.stringify({ key: p.key, name: p.dir, status: 'running', environment: { user: 'tester', git: { commit: COMMIT, dirty: false } } }),
  );
  const log = new EventLog(dir);
  const params = flatten(readRunConfig(dir));
  const point = readPoint(dir);
  log.append(
    {
      type: 'run_started',
      key: p.key,
      name: p.dir,
      experiment: 'synctest',
      sweep: s.dir.split('/').at(-1)!,
      params,
      tags: { 'exp.backend': 'wasm', 'exp.uid': point.uid, 'exp.swept': JSON.stringify(Object.keys(p.params)) },
      resumed,
    },
    time,
  );
  return log;
}

function epochs(log: EventLog, run: number, from: number, to: number): void {
  for (let e = from; e <= to; e++)
    log.append({ type: 'epoch', epoch: e, metrics: Object.fromEntries(METRICS.map((m, k) => [m, metricValue(run, e, k)])) }, T0 + e * 1000);
}

const png = Buffer.concat([
  Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]),
  Buffer.from(Array.from({ length: 256 }, (_, i) => i)),
  randomBytes(50_000),
]);

/** What training writes at the end: files, artifact events, run_ended, run.json. */
function finish(dir: string, log: EventLog, status: 'completed' | 'failed', time: number): void {
  writeFileSync(join(dir, 'curves.png'), png);
  writeFileSync(join(dir, 'summary.json'), JSON.stringify({ status }) + '\n');
  mkdirSync(join(dir, 'checkpoints', 'best'), { recursive: true });
  writeFileSync(join(dir, 'checkpoints', 'best', 'weights.bin'), randomBytes(4096));
  writeFileSync(join(dir, 'checkpoints', 'best', 'state.json'), '{"epoch": 2}\n');
  for (const a of ['config.yaml', 'summary.json', 'curves.png', 'checkpoints/best']) log.append({ type: 'artifact', path: a }, time);
  log.append(
    {
      type: 'run_ended',
      status,
      reason: status === 'completed' ? 'all epochs done' : 'out of memory',
      summary: { best_epoch: 2, best_val_loss: 0.1234567, baseline_val_fbeta: 0.48, duration_s: 12.5 },
    },
    time,
  );
  const rec = JSON.parse(readFileSync(join(dir, 'run.json'), 'utf8')) as Record<string, unknown>;
  writeFileSync(join(dir, 'run.json'), JSON.stringify({ ...rec, status, ended: new Date(time).toISOString() }));
}

async function runsOf(experiment: string): Promise<{ parents: Run[]; children: Run[] }> {
  const id = (await api.getExperimentByName(experiment))!.experiment_id;
  const all = await api.searchAllRuns({ experimentIds: [id] });
  const isChild = (r: Run): boolean => toRecord(r.data.tags)['mlflow.parentRunId'] !== undefined;
  return { parents: all.filter((r) => !isChild(r)), children: all.filter(isChild) };
}

const childNamed = (children: Run[], name: string): Run => children.find((r) => r.info.run_name === name)!;

async function historySteps(runId: string, key: string): Promise<number[]> {
  return (await api.getMetricHistory(runId, key)).map((m) => m.step).sort((a, b) => a - b);
}

test('a two-point sweep becomes one parent and two children with params, metrics, tags, artifacts and status', async () => {
  const s = makeSweep('sweep-a', 'sync-basic');
  for (const [i, status] of (['completed', 'failed'] as const).entries()) {
    const log = start(s, i, T0);
    epochs(log, i, 1, 3);
    finish(s.runs[i]!, log, status, T0 + 10_000);
  }
  const { runs, sweeps } = await syncFolders(s.runs, clients);
  assert.deepEqual(
    runs.map((r) => [r.outcome, r.sent, r.pending, r.error]),
    [
      ['sent', 9, 0, undefined],
      ['sent', 9, 0, undefined],
    ],
  );

  const { parents, children } = await runsOf('sync-basic');
  assert.equal(parents.length, 1);
  assert.equal(children.length, 2);
  const parent = parents[0]!;
  assert.equal(parent.info.run_name, 'sweep-a');
  assert.deepEqual(
    [toRecord(parent.data.tags)['exp.sweep'], toRecord(parent.data.tags)['exp.experiment'], toRecord(parent.data.tags)['exp.sweep_uid']],
    ['sweep-a', 'synctest', readPoint(s.runs[0]!).sweep_uid],
  );
  assert.equal(parent.info.status, 'FAILED'); // every point ended, one failed
  assert.deepEqual(
    sweeps.map((x) => [x.parentRunId, x.status]),
    [[parent.info.run_id, 'FAILED']],
  );

  for (const [i, p] of s.points.entries()) {
    const run = await api.getRun(childNamed(children, p.dir).info.run_id);
    const tags = toRecord(run.data.tags);
    assert.equal(tags['mlflow.parentRunId'], parent.info.run_id);
    assert.equal(tags['mlflow.runName'], p.dir);
    assert.equal(tags['exp.key'], p.key);
    assert.equal(tags['exp.backend'], 'wasm');
    assert.equal(tags['mlflow.source.git.commit'], COMMIT);
    assert.equal(tags['mlflow.source.name'], join(root, 'exp.yaml'), 'the experiment file');
    assert.equal(tags['exp.uid'], readPoint(s.runs[i]!).uid);
    assert.equal(run.info.user_id, 'tester');
    assert.equal(tags['mlflow.user'], 'tester');
    assert.match(tags['mlflow.note.content']!, new RegExp(`^### ${p.dir}\\n`));
    assert.match(tags['mlflow.note.content']!, i === 0 ? /\*\*completed\*\*: all epochs done/ : /\*\*failed\*\*: out of memory/);
    assert.match(tags['mlflow.note.content']!, /\| best epoch \| 2 \|\n\| best val loss \| 0\.1235 \|\n\| baseline val fbeta \| 0\.48 \|/);
    assert.match(tags['mlflow.note.content']!, new RegExp(`\\| key \\| \`${p.key}\` \\|`));

    const params = toRecord(run.data.params);
    assert.equal(params['training.learning_rate'], String(p.params['training.learning_rate']));
    assert.equal(Object.keys(params).filter((k) => k.startsWith('sweep.')).length, 0, 'no swept value twice');
    assert.equal(tags['exp.swept'], '["training.learning_rate"]');
    assert.ok(!Object.values(params).includes('null'), 'no unset value as "null"');
    assert.equal(params['model.trainable_blocks'], '[5]');
    assert.equal(params['data.image_size'], '32');
    assert.equal(params['name'], 'synctest');
    assert.equal(params['tracking.experiment'], 'sync-basic');

    for (const [k, m] of METRICS.entries()) {
      const h = (await api.getMetricHistory(run.info.run_id, m)).sort((a, b) => a.step - b.step);
      assert.deepEqual(
        h.map((x) => [x.step, x.timestamp, x.value]),
        [1, 2, 3].map((e) => [e, T0 + e * 1000, metricValue(i, e, k)]),
      );
    }
    assert.equal(run.info.status, i === 0 ? 'FINISHED' : 'FAILED');
    assert.equal(run.info.start_time, T0);
    assert.equal(run.info.end_time, T0 + 10_000);

    const dir = s.runs[i]!;
    for (const f of ['curves.png', 'summary.json', 'config.yaml', 'checkpoints/best/weights.bin', 'checkpoints/best/state.json']) {
      assert.ok(Buffer.from(await api.downloadArtifact(run.info.run_id, f)).equals(readFileSync(join(dir, f))), f);
    }
    assert.deepEqual(
      (await api.listArtifacts(run.info.run_id, 'checkpoints/best')).map((f) => f.path),
      ['checkpoints/best/state.json', 'checkpoints/best/weights.bin'],
    );
    const state = JSON.parse(readFileSync(join(dir, '.mlflow.json'), 'utf8')) as Record<string, unknown>;
    assert.deepEqual([state.runId, state.parentRunId, state.cursor, state.trackingUri], [run.info.run_id, parent.info.run_id, 9, server.uri]);
    assert.deepEqual((state.artifactsSent as string[]).sort(), [
      'checkpoints/best/state.json',
      'checkpoints/best/weights.bin',
      'config.yaml',
      'curves.png',
      'summary.json',
    ]);
  }
});

test('syncing again sends nothing; with the local state lost, the runs are found again and nothing is doubled', async () => {
  const s = makeSweep('sweep-a', 'sync-basic');
  const counts = async (): Promise<number[]> => {
    const { parents, children } = await runsOf('sync-basic');
    const lens = [parents.length, children.length];
    for (const c of children) for (const m of METRICS) lens.push((await api.getMetricHistory(c.info.run_id, m)).length);
    return lens;
  };
  const before = await counts();
  assert.deepEqual(before, [1, 2, ...Array(8).fill(3)]);

  client.batches = [];
  const again = await syncFolders(s.runs, clients);
  assert.deepEqual(
    again.runs.map((r) => r.outcome),
    ['up-to-date', 'up-to-date'],
  );
  assert.equal(client.batches.length, 0);

  for (const d of [s.dir, ...s.runs]) rmSync(join(d, '.mlflow.json'));
  const creates = client.creates;
  const lost = await syncFolders(s.runs, clients);
  assert.deepEqual(
    lost.runs.map((r) => [r.outcome, r.sent]),
    [
      ['sent', 9],
      ['sent', 9],
    ],
  );
  assert.equal(client.creates, creates, 'no run is created: parent and children are found by their tags');
  assert.equal(client.batches.flatMap((b) => b.metrics ?? []).length, 0, 'every metric point is on the server already');
  assert.deepEqual(await counts(), before);
});

test('a lost answer (the request landed) is not applied twice: run creation and metric points', async () => {
  const s = makeSweep('sweep-lost', 'sync-lost');
  const log = start(s, 0, T0);
  epochs(log, 0, 1, 1);
  client.lose = ['createRun', 'createRun', 'logBatch']; // the parent, the child, the params batch
  for (let i = 0; i < 3; i++) {
    const r = await syncRun(s.runs[0]!, clients);
    assert.deepEqual([r.outcome, r.pending], ['failed', 2]);
    assert.match(r.error!, /answer lost/);
  }
  assert.equal((await syncRun(s.runs[0]!, clients)).outcome, 'sent');

  epochs(log, 0, 2, 2);
  client.lose = ['logBatch']; // epoch 2's metrics land, the answer is lost
  const lostMetrics = await syncRun(s.runs[0]!, clients);
  assert.deepEqual([lostMetrics.outcome, lostMetrics.pending], ['failed', 1]);
  client.batches = [];
  assert.equal((await syncRun(s.runs[0]!, clients)).outcome, 'sent');
  assert.equal(client.batches.flatMap((b) => b.metrics ?? []).length, 0, 'the history check finds epoch 2 on the server');

  const { parents, children } = await runsOf('sync-lost');
  assert.deepEqual([parents.length, children.length], [1, 1]);
  for (const m of METRICS) assert.deepEqual(await historySteps(children[0]!.info.run_id, m), [1, 2]);
});

test('concurrent syncs of one sweep make one parent and one child per run; a second sync of the same run waits its turn', async () => {
  const s = makeSweep('sweep-race', 'sync-race');
  for (const i of [0, 1]) epochs(start(s, i, T0), i, 1, 2);
  const results = await Promise.all([syncRun(s.runs[0]!, clients), syncRun(s.runs[0]!, clients), syncRun(s.runs[1]!, clients)]);
  assert.deepEqual(
    results.map((r) => r.outcome),
    ['sent', 'busy', 'sent'],
  );
  assert.equal(results[1]!.pending, 3);
  const { parents, children } = await runsOf('sync-race');
  assert.deepEqual([parents.length, children.length], [1, 2]);
  assert.ok(children.every((c) => toRecord(c.data.tags)['mlflow.parentRunId'] === parents[0]!.info.run_id));
  assert.deepEqual(
    (await syncFolders(s.runs, clients)).runs.map((r) => r.outcome),
    ['up-to-date', 'up-to-date'],
  );
});

test('an outage: sync reports what is pending and loses nothing; after the restart everything arrives exactly once', { timeout: 240_000 }, async () => {
  const s = makeSweep('sweep-outage', 'sync-outage');
  const logA = start(s, 0, T0);
  epochs(logA, 0, 1, 1);
  assert.equal((await syncRun(s.runs[0]!, clients)).outcome, 'sent');

  const out: string[] = [];
  const io = {
    stdout: { write: (x: string) => out.push(x) },
    stderr: { write: (x: string) => out.push(x) },
    env: { ...process.env, MLFLOW_TRACKING_URI: '' },
    cwd: root,
  };
  const logB = start(s, 1, T0 + 20_000); // run B has never reached the server

  await server.stop();
  try {
    // the later tests need the server back, whatever happens here
    epochs(logA, 0, 2, 3);
    finish(s.runs[0]!, logA, 'completed', T0 + 10_000);
    epochs(logB, 1, 1, 2);
    const eventsBefore = [readFileSync(join(s.runs[0]!, 'events.jsonl')), readFileSync(join(s.runs[1]!, 'events.jsonl'))];

    const t = Date.now();
    const down = await syncFolders(s.runs, clients);
    console.log(`# sync against a stopped server took ${Date.now() - t} ms`);
    assert.deepEqual(
      down.runs.map((r) => [r.outcome, r.sent, r.pending]),
      [
        ['failed', 0, 7],
        ['failed', 0, 3],
      ],
    );
    assert.match(down.runs[0]!.error!, /cannot reach/);
    assert.match(down.runs[1]!.error!, /did not answer a moment ago/); // one dead server costs one wait: the circuit is open
    assert.deepEqual([readFileSync(join(s.runs[0]!, 'events.jsonl')), readFileSync(join(s.runs[1]!, 'events.jsonl'))], eventsBefore);
    const st = folderStatus(s.runs[0]!);
    assert.ok(st.tracking !== 'off');
    assert.deepEqual([st.status, st.epochsDone, st.epochsPlanned, st.tracking.unsent.length], ['completed', 3, 3, 7]);

    // The CLI says so too, with exit status 1. Folders go in name order: 0.0005 (run B) first.
    assert.equal(await main(['sync', s.dir], io), 1);
    assert.match(out.join(''), /rate=0\.0005-\w+ +failed: .*cannot reach.*\(3 events pending\) \[MLFLOW_NETWORK\]\n/);
    assert.match(out.join(''), /rate=0\.001-\w+ +failed: .*(did not answer a moment ago|cannot reach).*\(7 events pending\) \[MLFLOW_\w+\]\n/);
  } finally {
    await server.restart();
    console.log(`# mlflow server restarted in ${server.startMs} ms`);
  }
  epochs(logB, 1, 3, 3);
  finish(s.runs[1]!, logB, 'completed', T0 + 30_000);
  const up = await syncFolders(s.runs, clients);
  assert.deepEqual(
    up.runs.map((r) => [r.outcome, r.sent, r.pending]),
    [
      ['sent', 7, 0],
      ['sent', 9, 0],
    ],
  );

  const { parents, children } = await runsOf('sync-outage');
  assert.deepEqual([parents.length, children.length], [1, 2]);
  assert.equal(parents[0]!.info.status, 'FINISHED');
  for (const c of children) {
    assert.equal(c.info.status, 'FINISHED');
    for (const m of METRICS) assert.deepEqual(await historySteps(c.info.run_id, m), [1, 2, 3]);
    assert.ok(Buffer.from(await api.downloadArtifact(c.info.run_id, 'curves.png')).equals(png));
  }
  const st2 = folderStatus(s.runs[1]!);
  assert.ok(st2.tracking !== 'off');
  assert.equal(st2.tracking.unsent.length, 0);
  out.length = 0;
  assert.equal(await main(['status', s.dir], io), 0);
  assert.match(out.join(''), /completed +3\/3 +synced/);
});

test('a resumed run continues in the same MLflow run; a log without run_started still gets a child run', async () => {
  const s = makeSweep('sweep-resume', 'sync-resume');
  const log = start(s, 0, T0);
  epochs(log, 0, 1, 1);
  log.append({ type: 'run_ended', status: 'killed', reason: 'interrupted' }, T0 + 1500);
  const first = await syncRun(s.runs[0]!, clients);
  assert.equal((await api.getRun(first.runId!)).info.status, 'KILLED');
  const resumed = start(s, 0, T0 + 5000, true);
  epochs(resumed, 0, 2, 3);
  finish(s.runs[0]!, resumed, 'completed', T0 + 10_000);
  const second = await syncRun(s.runs[0]!, clients);
  assert.deepEqual([second.outcome, second.runId, second.warnings], ['sent', first.runId, []]);
  for (const m of METRICS) assert.deepEqual(await historySteps(first.runId!, m), [1, 2, 3]);

  // Training that fails before it starts (data missing) writes only run_ended.
  new EventLog(s.runs[1]!).append({ type: 'run_ended', status: 'failed', reason: 'data: train_v2.csv is missing' }, T0 + 20_000);
  const failed = await syncRun(s.runs[1]!, clients);
  assert.equal(failed.outcome, 'sent');
  const run = await api.getRun(failed.runId!);
  assert.deepEqual(
    [run.info.status, toRecord(run.data.tags)['exp.key'], toRecord(run.data.tags)['exp.reason']],
    ['FAILED', s.points[1]!.key, 'data: train_v2.csv is missing'],
  );
  assert.equal(toRecord(run.data.params)['training.learning_rate'], '0.0005');
  const { children } = await runsOf('sync-resume');
  assert.equal(children.length, 2);
});

test('no tracking URI: sync is a no-op that says tracking is off', async () => {
  const r = planExperiment(join(root, 'exp.yaml'), { set: ['tracking.uri=null'] });
  const { dir, index } = writePlan(join(root, 'runs-off'), r.plan!, 'sweep-off');
  const runDir = join(dir, index.points[0]!.dir);
  new EventLog(runDir).append({ type: 'run_ended', status: 'failed', reason: 'x' });
  const res = await syncRun(runDir, clients, { env: {} });
  assert.deepEqual([res.outcome, res.sent], ['off', 0]);
  assert.equal(existsSync(join(runDir, '.mlflow.json')), false);
  assert.equal(folderStatus(runDir, {}).tracking, 'off');
  assert.equal(readEvents(runDir).events.length, 1);
});

test('params: JSON for non-strings, URLs without credentials, no unset values, and nothing MLflow would refuse or truncate', () => {
  const { params, skipped } = paramsOf({
    'training.learning_rate': 0.001,
    'model.trainable_blocks': [5],
    'data.limit': null,
    'augmentation.dihedral': true,
    name: 'x',
    'tracking.uri': 'https://alice:s3cret@mlflow.example:5000/',
    'bad key!': 1,
    long: 'y'.repeat(6001),
  });
  assert.deepEqual(params, {
    'training.learning_rate': '0.001',
    'model.trainable_blocks': '[5]',
    'augmentation.dihedral': 'true',
    name: 'x',
    'tracking.uri': 'https://mlflow.example:5000/',
  });
  assert.equal(skipped.length, 2);
});
