/**
 * End to end, as a user runs it: `exp run` on a two-point sweep with tracking.uri set trains
 * both points (synthetic data, wasm) and the sweep is in a real MLflow server when it returns;
 * `exp status` and `exp sync` then agree that nothing is left to send. One training run only:
 * it takes about a minute of CPU.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { exp, tempDir } from '../helpers/cli.js';
import { startMlflow, type MlflowServer } from '../helpers/mlflow-server.js';
import { MlflowClient, toRecord, type Run } from '../../src/mlflow/client.js';

let server: MlflowServer;
let api: MlflowClient;
let tmp: string;

before(async () => {
  server = await startMlflow();
  console.log(`# mlflow server up in ${server.startMs} ms at ${server.uri}`);
  api = new MlflowClient({ uri: server.uri, backoffMs: 50 });
  tmp = tempDir('exp-e2e-tracking-');
}, { timeout: 180_000 });

after(async () => {
  await server?.dispose();
  if (tmp) rmSync(tmp, { recursive: true, force: true });
});

test('exp run sends the sweep to MLflow as it finishes; exp status and exp sync then find nothing left', { timeout: 900_000 }, async () => {
  const file = join(tmp, 'tracked.yaml');
  writeFileSync(file, [
    'name: e2e-tracking',
    'data: { path: ./data, image_size: 32, synth: { count: 60, seed: 0, size: 64 } }',
    'model: { weights: none, frozen_blocks: 4 }',
    'training: { batch_size: 16, epochs: 2 }',
    'backend: wasm',
    `tracking: { uri: '${server.uri}' }`,
    'sweep: { grid: { training.learning_rate: [0.001, 0.0005] } }',
  ].join('\n') + '\n');
  const env = { EXP_CACHE_DIR: join(tmp, 'cache'), MLFLOW_TRACKING_URI: '', MLFLOW_EXPERIMENT_NAME: '' };
  const t0 = Date.now();
  const run = exp(['run', file, '--runs-dir', join(tmp, 'runs')], { cwd: tmp, env });
  console.log(`# exp run took ${((Date.now() - t0) / 1000).toFixed(1)} s`);
  assert.equal(run.code, 0, run.stdout + run.stderr);
  assert.match(run.stdout, new RegExp(`MLflow: 2 runs synced to ${server.uri} \\(experiment e2e-tracking, parent run [0-9a-f]{32}\\)`));

  const expDir = join(tmp, 'runs', 'e2e-tracking');
  const sweep = readdirSync(expDir)[0]!;
  const sweepDir = join(expDir, sweep);
  const index = JSON.parse(readFileSync(join(sweepDir, 'index.json'), 'utf8')) as { points: { key: string; dir: string; params: Record<string, unknown> }[] };

  const experimentId = (await api.getExperimentByName('e2e-tracking'))!.experiment_id;
  const all = await api.searchAllRuns({ experimentIds: [experimentId] });
  const parents = all.filter((r) => toRecord(r.data.tags)['mlflow.parentRunId'] === undefined);
  assert.equal(parents.length, 1);
  const parent = parents[0]!;
  assert.deepEqual([parent.info.run_name, parent.info.status], [sweep, 'FINISHED']);
  const children = all.filter((r) => toRecord(r.data.tags)['mlflow.parentRunId'] === parent.info.run_id);
  assert.deepEqual(children.map((c) => c.info.run_name).sort(), index.points.map((p) => p.dir).sort());
  assert.equal(all.length, 3);

  for (const p of index.points) {
    const dir = join(sweepDir, p.dir);
    const child: Run = await api.getRun(children.find((c) => c.info.run_name === p.dir)!.info.run_id);
    const tags = toRecord(child.data.tags);
    assert.equal(child.info.status, 'FINISHED');
    assert.equal(tags['exp.key'], p.key);
    assert.equal(tags['exp.backend'], 'wasm');
    assert.match(tags['mlflow.note.content']!, /\*\*completed\*\*/);
    assert.match(tags['mlflow.note.content']!, /\| best epoch \| [12] \|/);
    assert.equal(toRecord(child.data.params)['training.learning_rate'], String(p.params['training.learning_rate']));
    assert.equal(toRecord(child.data.params)['training.epochs'], '2');

    // Every epoch's metrics, as metrics.jsonl has them, at step = epoch.
    const local = readFileSync(join(dir, 'metrics.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l) as Record<string, number>);
    assert.deepEqual(local.map((l) => l.epoch), [1, 2]);
    for (const key of ['loss', 'val_loss', 'fbeta', 'val_fbeta']) {
      const h = (await api.getMetricHistory(child.info.run_id, key)).sort((a, b) => a.step - b.step);
      assert.deepEqual(h.map((m) => [m.step, m.value]), local.map((l) => [l.epoch, l[key]]), key);
    }

    for (const f of ['curves.png', 'summary.json', 'config.yaml', 'metrics.jsonl']) {
      assert.ok(Buffer.from(await api.downloadArtifact(child.info.run_id, f)).equals(readFileSync(join(dir, f))), f);
    }
    // tracking.log_checkpoints: model (the default) uploads the best checkpoint without optimizer state.
    const best = readdirSync(join(dir, 'checkpoints', 'best')).filter((f) => !f.startsWith('optimizer')).sort();
    assert.ok(best.includes('state.json'));
    assert.deepEqual((await api.listArtifacts(child.info.run_id, 'checkpoints/best')).map((f) => f.path).sort(), best.map((b) => `checkpoints/best/${b}`));
    for (const b of best) assert.ok(Buffer.from(await api.downloadArtifact(child.info.run_id, `checkpoints/best/${b}`)).equals(readFileSync(join(dir, 'checkpoints', 'best', b))), b);
  }

  const status = exp(['status', sweepDir, '--json'], { cwd: tmp, env });
  assert.equal(status.code, 0, status.stderr);
  const rows = JSON.parse(status.stdout) as { status: string; epochs_done: number; epochs_planned: number; tracking: { unsent: number; run_id: string } }[];
  assert.deepEqual(rows.map((r) => [r.status, r.epochs_done, r.epochs_planned, r.tracking.unsent]), [['completed', 2, 2, 0], ['completed', 2, 2, 0]]);
  assert.deepEqual(rows.map((r) => r.tracking.run_id).sort(), children.map((c) => c.info.run_id).sort());

  const sync = exp(['sync'], { cwd: tmp, env: { ...env, EXP_RUNS_DIR: join(tmp, 'runs') } });
  assert.equal(sync.code, 0, sync.stderr);
  assert.equal(sync.stdout.match(/ up to date$/gm)?.length, 2, sync.stdout);
  assert.equal((await api.searchAllRuns({ experimentIds: [experimentId] })).length, 3);
});
