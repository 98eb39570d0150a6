/**
 * Tracking under faults, against a real MLflow server: two run folders of one key are two
 * MLflow runs; a copied folder whose history diverged is refused, then recorded as a run of
 * its own on request; a damaged line in events.jsonl stops that run's sync with its line
 * number until the log is rebuilt; a server that accepts connections and never answers does
 * not hold a run up, and loses nothing.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { cpSync, readFileSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:net';
import { join } from 'node:path';
import { expIn, tempDir } from '../helpers/cli.js';
import { startMlflow, type MlflowServer } from '../helpers/mlflow-server.js';
import { tinyExperiment, trainingBackends } from '../helpers/training.js';
import { MlflowClient, toRecord, type Run } from '../../src/mlflow/client.js';
import { planExperiment } from '../../src/sweep/plan.js';
import { writePlan } from '../../src/store/sweep.js';
import { readPoint, readRunConfig } from '../../src/store/run.js';
import { EventLog } from '../../src/track/events.js';
import { flatten } from '../../src/util/object.js';

let server: MlflowServer;
let api: MlflowClient;
let tmp: string;

before(
  async () => {
    server = await startMlflow();
    api = new MlflowClient({ uri: server.uri, backoffMs: 50 });
    tmp = tempDir('exp-rel-track-');
  },
  { timeout: 180_000 },
);
after(async () => {
  await server?.dispose();
});

/** A one-point sweep planned into `runsDir`, its run folder, and a function that logs epochs to it. */
function plannedRun(runsDir: string, experiment: string): { dir: string; log: EventLog; epoch: (e: number, loss: number) => void } {
  writeFileSync(
    join(tmp, 'e.yaml'),
    `name: reltrack\ndata: { path: ./data }\nmodel: { weights: none }\ntraining: { epochs: 4 }\ntracking: { uri: '${server.uri}', experiment: ${experiment} }\n`,
  );
  const r = planExperiment(join(tmp, 'e.yaml'));
  const { dir: sweep, index } = writePlan(runsDir, r.plan!, 'sweep-fixed');
  const dir = join(sweep, index.points[0]!.dir);
  const log = new EventLog(dir);
  const p = readPoint(dir);
  log.append({
    type: 'run_started',
    key: p.key,
    name: index.points[0]!.dir,
    experiment: 'reltrack',
    sweep: 'sweep-fixed',
    params: flatten(readRunConfig(dir)),
    tags: { 'exp.uid': p.uid },
    resumed: false,
  });
  return { dir, log, epoch: (e, loss) => log.append({ type: 'epoch', epoch: e, metrics: { loss, val_loss: loss + 0.1 } }) };
}

/**
 * The child runs of an experiment. With `expected`, polls until there are that many (MLflow's
 * search can lag behind a create) and fails saying what it found if they never come: a
 * generous deadline, never a fixed wait that then accepts whatever is there.
 */
async function childrenOf(experiment: string, expected?: number): Promise<Run[]> {
  const id = (await api.getExperimentByName(experiment))!.experiment_id;
  const deadline = Date.now() + 60_000;
  for (;;) {
    const runs = (await api.searchAllRuns({ experimentIds: [id] })).filter((r) => toRecord(r.data.tags)['mlflow.parentRunId'] !== undefined);
    if (expected === undefined || runs.length >= expected) return runs;
    if (Date.now() > deadline) assert.fail(`expected ${expected} child runs in ${experiment}, found ${runs.length} after 60 s`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

const steps = async (runId: string): Promise<number[]> => (await api.getMetricHistory(runId, 'loss')).map((m) => m.step).sort((a, b) => a - b);

test('regression: two run folders of the same key (two runs folders) are two MLflow runs, never merged (histories were 1,2,3,4,2)', async () => {
  const a = plannedRun(join(tmp, 'A'), 'rel-two');
  for (const e of [1, 2, 3, 4]) a.epoch(e, 1 / e);
  a.log.append({ type: 'run_ended', status: 'completed', reason: 'done' });
  const b = plannedRun(join(tmp, 'B'), 'rel-two');
  b.epoch(1, 0.9);
  b.epoch(2, 0.8);
  b.log.append({ type: 'run_ended', status: 'killed', reason: 'interrupted' });
  for (const d of [a.dir, b.dir]) assert.equal((await expIn(['sync', d], { cwd: tmp })).code, 0);
  const runs = await childrenOf('rel-two', 2);
  assert.equal(runs.length, 2);
  assert.equal(new Set(runs.map((r) => toRecord(r.data.tags)['exp.key'])).size, 1, 'tagged with the same key, so they can be compared');
  const byUid = new Map(runs.map((r) => [toRecord(r.data.tags)['exp.uid'], r]));
  const ra = byUid.get(readPoint(a.dir).uid)!;
  const rb = byUid.get(readPoint(b.dir).uid)!;
  assert.deepEqual([ra.info.status, await steps(ra.info.run_id)], ['FINISHED', [1, 2, 3, 4]]);
  assert.deepEqual([rb.info.status, await steps(rb.info.run_id)], ['KILLED', [1, 2]]);
});

/** POSTs to MLflow's REST API as another client (the UI, `mlflow experiments delete`) would. */
async function rest(route: string, body: Record<string, unknown>): Promise<void> {
  const res = await fetch(`${server.uri}/api/2.0/mlflow/${route}`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify(body),
  });
  assert.equal(res.status, 200, await res.text());
}

test('regression: an MLflow experiment deleted while a sweep runs: exp sync says MLFLOW_EXPERIMENT_DELETED and how to restore it or use another; after a restore it syncs', async () => {
  const a = plannedRun(join(tmp, 'DEL'), 'rel-deleted');
  a.epoch(1, 0.7);
  assert.equal((await expIn(['sync', a.dir], { cwd: tmp })).code, 0);
  const id = (await api.getExperimentByName('rel-deleted'))!.experiment_id;
  await rest('experiments/delete', { experiment_id: id });
  a.epoch(2, 0.6);
  const fresh = plannedRun(join(tmp, 'DEL2'), 'rel-deleted'); // a point that has not reached MLflow yet
  fresh.epoch(1, 0.9);
  for (const dir of [a.dir, fresh.dir]) {
    const r = await expIn(['sync', dir], { cwd: tmp });
    const out = r.stdout + r.stderr;
    assert.equal(r.code, 1, out);
    assert.match(out, /experiment 'rel-deleted' .*is deleted[\s\S]*\[MLFLOW_EXPERIMENT_DELETED\]/);
    assert.match(out, new RegExp(`mlflow experiments restore --experiment-id ${id}`), out);
    assert.match(out, /tracking\.experiment/, out);
    assert.match(out, /MLFLOW_EXPERIMENT_NAME/, out);
    assert.match(
      out,
      /\n {4}fix: restore it [^\n]*\nexp sync: 1 failed; nothing is lost: apply the fix shown, then run exp sync again\n$/,
      'the fix it promises is shown',
    );
  }
  await rest('experiments/restore', { experiment_id: id });
  for (const dir of [a.dir, fresh.dir]) {
    const r = await expIn(['sync', dir], { cwd: tmp });
    assert.equal(r.code, 0, r.stdout + r.stderr);
  }
  const byUid = new Map((await childrenOf('rel-deleted', 2)).map((r) => [toRecord(r.data.tags)['exp.uid'], r]));
  assert.deepEqual(await steps(byUid.get(readPoint(a.dir).uid)!.info.run_id), [1, 2], 'nothing was lost');
  assert.deepEqual(await steps(byUid.get(readPoint(fresh.dir).uid)!.info.run_id), [1]);
});

test('a copied folder whose history diverged is refused with a fix; --new-identity records it as a run of its own', async () => {
  const a = plannedRun(join(tmp, 'C'), 'rel-copy');
  a.epoch(1, 0.7);
  a.epoch(2, 0.6);
  assert.equal((await expIn(['sync', a.dir], { cwd: tmp })).code, 0);
  const copy = join(tmp, 'C-copy');
  cpSync(a.dir, copy, { recursive: true });
  // The original trains on; the copy trains on differently, from the same state.
  a.epoch(3, 0.5);
  assert.equal((await expIn(['sync', a.dir], { cwd: tmp })).code, 0);
  const log = new EventLog(copy);
  log.append({ type: 'epoch', epoch: 3, metrics: { loss: 0.55, val_loss: 0.65 } });
  const refused = await expIn(['sync', copy], { cwd: tmp });
  assert.equal(refused.code, 1);
  assert.match(refused.stdout, /has loss 0\.5 at epoch 3, but this folder has 0\.55.*a copy of a run that trained on elsewhere/);
  assert.match(refused.stdout, /fix: to record this folder as a run of its own: exp sync --new-identity /);
  const [orig] = await childrenOf('rel-copy', 1);
  assert.deepEqual(await steps(orig!.info.run_id), [1, 2, 3], 'nothing of the copy reached the original run');

  const fixed = await expIn(['sync', '--new-identity', copy], { cwd: tmp });
  assert.equal(fixed.code, 0, fixed.stdout + fixed.stderr);
  const runs = await childrenOf('rel-copy', 2);
  assert.equal(runs.length, 2);
  const mine = runs.find((r) => toRecord(r.data.tags)['exp.uid'] === readPoint(copy).uid)!;
  assert.deepEqual(await steps(mine.info.run_id), [1, 2, 3]);
  assert.equal((await api.getMetricHistory(mine.info.run_id, 'loss')).find((m) => m.step === 3)!.value, 0.55);
});

test("regression: a damaged line in the middle of events.jsonl stops that run's sync with its line number (it was skipped in silence); --rebuild-events mends it", async () => {
  const r = plannedRun(join(tmp, 'D'), 'rel-damaged');
  for (const e of [1, 2, 3]) r.epoch(e, 1 / e);
  writeFileSync(join(r.dir, 'metrics.jsonl'), [1, 2, 3].map((e) => JSON.stringify({ epoch: e, loss: 1 / e, val_loss: 1 / e + 0.1 })).join('\n') + '\n');
  const path = join(r.dir, 'events.jsonl');
  const lines = readFileSync(path, 'utf8').split('\n');
  lines[1] = lines[1]!.replace('"epoch":1', '"epoch":9'); // changed on disk: the checksum no longer matches
  writeFileSync(path, lines.join('\n'));
  const bad = await expIn(['sync', r.dir], { cwd: tmp });
  assert.equal(bad.code, 1);
  assert.match(bad.stdout, /events\.jsonl:2: its checksum does not match/);
  assert.match(bad.stdout, /fix: rebuild the log from the run's other files: exp sync --rebuild-events /);
  const status = await expIn(['status', r.dir], { cwd: tmp });
  assert.match(status.stdout, /events\.jsonl has 1 damaged line: exp sync --rebuild-events/);
  const mended = await expIn(['sync', '--rebuild-events', r.dir], { cwd: tmp });
  assert.equal(mended.code, 0, mended.stdout + mended.stderr);
  assert.match(mended.stdout, /rebuilt events\.jsonl \(4 events\)/);
  const [run] = await childrenOf('rel-damaged', 1);
  assert.deepEqual(await steps(run!.info.run_id), [1, 2, 3]);
});

test('regression: a server that accepts connections and never answers does not hold the run up; nothing is lost', { timeout: 400_000 }, async () => {
  const sockets: import('node:net').Socket[] = [];
  const silent: Server = createServer((s) => {
    sockets.push(s);
  }); // accepts, reads nothing, answers nothing
  await new Promise<void>((r) => silent.listen(0, '127.0.0.1', r));
  const port = (silent.address() as { port: number }).port;
  try {
    const backend = (await trainingBackends())[0]!;
    const file = tinyExperiment(tmp, { backend, name: 'slow', epochs: 3 });
    const t0 = Date.now();
    const quiet = await expIn(['run', file, '--runs-dir', join(tmp, 'runs-quiet')], { cwd: tmp, env: { MLFLOW_TRACKING_URI: '' } });
    const t1 = Date.now();
    const slow = await expIn(['run', file, '--runs-dir', join(tmp, 'runs-slow')], { cwd: tmp, env: { MLFLOW_TRACKING_URI: `http://127.0.0.1:${port}` } });
    const t2 = Date.now();
    console.log(`# without tracking ${((t1 - t0) / 1000).toFixed(1)} s; with a silent server ${((t2 - t1) / 1000).toFixed(1)} s`);
    assert.equal(quiet.code, 0, quiet.stderr);
    assert.equal(slow.code, 0, slow.stderr);
    assert.match(slow.stderr, /not everything reached http:\/\/127\.0\.0\.1:\d+.*nothing is lost: 'exp status .*' shows what is pending/);
    const status = await expIn(['status', join(tmp, 'runs-slow'), '--json'], { cwd: tmp, env: { MLFLOW_TRACKING_URI: `http://127.0.0.1:${port}` } });
    const rows = JSON.parse(status.stdout) as { status: string; tracking: { unsent: number } }[];
    assert.equal(rows[0]!.status, 'completed');
    assert.ok(rows[0]!.tracking.unsent > 0, 'the events wait for the next sync');
  } finally {
    for (const s of sockets) s.destroy();
    silent.close();
  }
});
