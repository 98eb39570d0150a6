/**
 * End to end, as a user runs it: `exp run` on a 2x2 sweep with tracking.uri set trains the
 * points (synthetic data) and the sweep is in a real MLflow server when it returns; `exp
 * status` and `exp sync` then agree that nothing is left to send. Then it is read back with
 * MLflow's own Python client, as MLflow users would: search_runs ranks the children as `exp
 * compare` does, the parent summarises the sweep, no param is "null", the dataset is in
 * run.inputs, and mlflow.pyfunc.load_model predicts what `exp predict` does. One training run.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { copyFileSync, existsSync, mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { basename, join } from 'node:path';
import { spawnSync } from 'node:child_process';
import { exp, ROOT, tempDir } from '../helpers/cli.js';
import { trainingBackends } from '../helpers/training.js';
import { decodeMany } from '../../src/data/decode.js';
import { startMlflow, type MlflowServer } from '../helpers/mlflow-server.js';
import { MlflowClient, toRecord, type Run } from '../../src/mlflow/client.js';

let server: MlflowServer;
let api: MlflowClient;
let tmp: string;

before(
  async () => {
    server = await startMlflow();
    console.log(`# mlflow server up in ${server.startMs} ms at ${server.uri}`);
    api = new MlflowClient({ uri: server.uri, backoffMs: 50 });
    tmp = tempDir('exp-e2e-tracking-');
  },
  { timeout: 180_000 },
);

after(async () => {
  await server?.dispose();
  if (tmp) rmSync(tmp, { recursive: true, force: true });
});

test('exp run sends the sweep to MLflow as it finishes; exp status and exp sync then find nothing left', { timeout: 900_000 }, async () => {
  const backend = (await trainingBackends())[0]!;
  const file = join(tmp, 'tracked.yaml');
  writeFileSync(
    file,
    [
      'name: e2e-tracking',
      'data: { path: ./data, image_size: 32, synth: { count: 60, seed: 0, size: 64 } }',
      'model: { weights: none, frozen_blocks: 4 }',
      'training: { batch_size: 16, epochs: 2 }',
      `backend: ${backend}`,
      `tracking: { uri: '${server.uri}' }`,
      'sweep: { grid: { training.learning_rate: [0.001, 0.0005], model.head.units: [16, 32] } }',
    ].join('\n') + '\n',
  );
  const env = { EXP_CACHE_DIR: join(tmp, 'cache'), MLFLOW_TRACKING_URI: '', MLFLOW_EXPERIMENT_NAME: '' };
  const t0 = Date.now();
  const run = exp(['run', file, '--runs-dir', join(tmp, 'runs')], { cwd: tmp, env });
  console.log(`# exp run took ${((Date.now() - t0) / 1000).toFixed(1)} s`);
  assert.equal(run.code, 0, run.stdout + run.stderr);
  assert.match(run.stdout, new RegExp(`MLflow: 4 runs synced to ${server.uri} \\(experiment e2e-tracking, parent run [0-9a-f]{32}\\)`));

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
  assert.equal(all.length, 5);

  for (const p of index.points) {
    const dir = join(sweepDir, p.dir);
    const child: Run = await api.getRun(children.find((c) => c.info.run_name === p.dir)!.info.run_id);
    const tags = toRecord(child.data.tags);
    assert.equal(child.info.status, 'FINISHED');
    assert.equal(tags['exp.key'], p.key);
    assert.equal(tags['exp.backend'], backend);
    assert.match(tags['mlflow.note.content']!, /\*\*completed\*\*/);
    assert.match(tags['mlflow.note.content']!, /\| best epoch \| [12] \|/);
    assert.equal(toRecord(child.data.params)['training.learning_rate'], String(p.params['training.learning_rate']));
    assert.equal(toRecord(child.data.params)['training.epochs'], '2');

    // Every epoch's metrics, as metrics.jsonl has them, at step = epoch.
    const local = readFileSync(join(dir, 'metrics.jsonl'), 'utf8')
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as Record<string, number>);
    assert.deepEqual(
      local.map((l) => l.epoch),
      [1, 2],
    );
    for (const key of ['loss', 'val_loss', 'fbeta', 'val_fbeta']) {
      const h = (await api.getMetricHistory(child.info.run_id, key)).sort((a, b) => a.step - b.step);
      assert.deepEqual(
        h.map((m) => [m.step, m.value]),
        local.map((l) => [l.epoch, l[key]]),
        key,
      );
    }

    for (const f of ['curves.png', 'summary.json', 'config.yaml', 'metrics.jsonl']) {
      assert.ok(Buffer.from(await api.downloadArtifact(child.info.run_id, f)).equals(readFileSync(join(dir, f))), f);
    }
    // tracking.log_checkpoints: model (the default) logs the best checkpoint as an MLflow model, no checkpoint files.
    assert.deepEqual(await api.listArtifacts(child.info.run_id, 'checkpoints'), []);
  }

  const status = exp(['status', sweepDir, '--json'], { cwd: tmp, env });
  assert.equal(status.code, 0, status.stderr);
  const rows = JSON.parse(status.stdout) as { status: string; epochs_done: number; epochs_planned: number; tracking: { unsent: number; run_id: string } }[];
  assert.deepEqual(
    rows.map((r) => [r.status, r.epochs_done, r.epochs_planned, r.tracking.unsent]),
    Array(4).fill(['completed', 2, 2, 0]),
  );
  assert.deepEqual(rows.map((r) => r.tracking.run_id).sort(), children.map((c) => c.info.run_id).sort());

  const sync = exp(['sync'], { cwd: tmp, env: { ...env, EXP_RUNS_DIR: join(tmp, 'runs') } });
  assert.equal(sync.code, 0, sync.stderr);
  assert.equal(sync.stdout.match(/ up to date$/gm)?.length, 4, sync.stdout);
  assert.equal((await api.searchAllRuns({ experimentIds: [experimentId] })).length, 5);

  // As an MLflow user reads it: MLflow's Python client in the test virtualenv.
  // The sweep's default ranking (sweep.metric: final_val_fbeta) is the README's search_runs order.
  const compare = exp(['compare', sweepDir, '--json'], { cwd: tmp, env });
  assert.equal(compare.code, 0, compare.stderr);
  const ours = JSON.parse(compare.stdout) as { dir: string; name: string; final: Record<string, number> }[];
  const bestDir = ours[0]!.dir;
  const bestRunId = (JSON.parse(readFileSync(join(bestDir, '.mlflow.json'), 'utf8')) as { runId: string }).runId;
  const images = readdirSync(join(tmp, 'data', 'train-jpg'))
    .sort()
    .slice(0, 4)
    .map((f) => join(tmp, 'data', 'train-jpg', f));
  const { pixels } = await decodeMany(images, 32, 'nearest'); // the file's resize (the default)
  writeFileSync(join(tmp, 'pixels.bin'), new Float32Array(Uint8Array.from(pixels)));
  mkdirSync(join(tmp, 'some'), { recursive: true });
  for (const f of images) copyFileSync(f, join(tmp, 'some', basename(f)));
  const predicted = exp(['predict', bestDir, join(tmp, 'some'), '--out', join(tmp, 'sub.csv'), '--probabilities', join(tmp, 'probs.csv')], { cwd: tmp, env });
  assert.equal(predicted.code, 0, predicted.stderr);
  const py = spawnSync(
    join(ROOT, '.venv', 'bin', 'python'),
    [join(ROOT, 'test', 'e2e', 'mlflow_readback.py'), server.uri, 'e2e-tracking', join(tmp, 'pixels.bin'), '32'],
    { encoding: 'utf8', timeout: 300_000 },
  );
  assert.equal(py.status, 0, py.stderr);
  const back = JSON.parse(py.stdout.trim().split('\n').at(-1)!) as {
    best_run_id: string;
    ranked: [string, number][];
    parent: { params: Record<string, string>; tags: Record<string, string>; metrics: Record<string, number>; artifacts: string[] };
    experiment_tags: Record<string, string>;
    params: string[];
    datasets: Record<string, { name: string; digest: string; context: string[] }[]>;
    logged_models: [string, string][];
    user_ids: string[];
    columns: string[];
    probs: number[][];
  };
  assert.equal(
    back.best_run_id,
    bestRunId,
    `search_runs ranks ${JSON.stringify(back.ranked)}; exp compare ranks ${ours.map((o) => `${o.name} ${o.final.val_fbeta}`).join(', ')}`,
  );
  assert.deepEqual(
    back.params.filter((v) => v === 'null' || v === ''),
    [],
  );
  assert.equal(back.parent.params['sweep.points'], '4');
  assert.equal(back.parent.params['sweep.training.learning_rate'], '0.001, 0.0005');
  assert.equal(back.parent.params['sweep.model.head.units'], '16, 32');
  assert.deepEqual(JSON.parse(back.parent.tags['exp.swept']!), ['training.learning_rate', 'model.head.units']);
  assert.equal(back.parent.tags['exp.best_run_id'], back.best_run_id, "the parent's best child is search_runs' first");
  assert.deepEqual([back.parent.tags['exp.rank_metric'], back.parent.tags['exp.rank_mode']], ['final_val_fbeta', 'max']);
  assert.equal(back.parent.metrics.sweep_best_final_val_fbeta, back.ranked[0]![1]);
  assert.equal(back.parent.metrics.points_done, 4);
  assert.match(back.parent.tags['mlflow.note.content']!, /\| training\.learning_rate \| model\.head\.units \| run \| status/);
  assert.ok(back.parent.tags['mlflow.source.git.commit'] !== undefined || !existsSync(join(ROOT, '.git')), 'the parent has the git commit');
  // report.html: the page exp report draws, uploaded once every point has ended.
  assert.deepEqual(back.parent.artifacts, ['index.json', 'report.html', 'sweep.yaml']);
  assert.ok(back.experiment_tags['mlflow.note.content'], 'the experiment is described');
  assert.equal(back.experiment_tags['mlflow.experimentKind'], 'custom_model_development', 'MLflow 3 opens it on the training runs');
  assert.equal(Object.keys(back.datasets).length, 4);
  for (const ds of Object.values(back.datasets)) {
    assert.deepEqual(ds.flatMap((d) => d.context).sort(), ['train', 'validation'], JSON.stringify(ds));
    assert.ok(
      ds.every((d) => d.digest.length > 0 && d.name.startsWith('data/')),
      JSON.stringify(ds),
    );
  }
  assert.equal(back.logged_models.length, 4);
  assert.ok(back.user_ids.every((u) => u.length > 0));
  // mlflow.pyfunc.load_model('runs:/<best>/model').predict(pixels) = exp predict's probabilities.
  const mine = readFileSync(join(tmp, 'probs.csv'), 'utf8').trim().split('\n');
  assert.deepEqual(back.columns, mine[0]!.split(',').slice(1));
  let worst = 0;
  mine.slice(1).forEach((line, i) =>
    line
      .split(',')
      .slice(1)
      .forEach((v, t) => {
        worst = Math.max(worst, Math.abs(Number(v) - back.probs[i]![t]!));
      }),
  );
  assert.ok(worst < 1e-4, `pyfunc vs exp predict: max |difference| ${worst}`);
});
