/**
 * Run housekeeping as a user does it, on a tracked two-point sweep: exp tag labels a run in
 * run.json and in MLflow, and exp runs --filter finds it by the tag; exp gc frees the last
 * checkpoints of finished runs and keeps the best (the model); exp rm lists without --yes,
 * then removes the folder, its index entry, and marks its MLflow run deleted.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { expIn, tempDir } from '../helpers/cli.js';
import { tinyExperiment, trainingBackends } from '../helpers/training.js';
import { startMlflow, type MlflowServer } from '../helpers/mlflow-server.js';
import { MlflowClient, toRecord } from '../../src/mlflow/client.js';

let server: MlflowServer;
let api: MlflowClient;
let tmp: string;
let sweep: string;
let runs: string[];
const env = (): NodeJS.ProcessEnv => ({ EXP_RUNS_DIR: join(tmp, 'runs'), MLFLOW_TRACKING_URI: '', MLFLOW_EXPERIMENT_NAME: '' });
const runId = (dir: string): string => (JSON.parse(readFileSync(join(dir, '.mlflow.json'), 'utf8')) as { runId: string }).runId;

before(
  async () => {
    server = await startMlflow();
    api = new MlflowClient({ uri: server.uri, backoffMs: 50 });
    tmp = tempDir('exp-housekeeping-');
    const backend = (await trainingBackends())[0]!;
    const file = tinyExperiment(tmp, {
      backend,
      epochs: 2,
      extra: `tracking: { uri: '${server.uri}', log_checkpoints: none }\nsweep: { grid: { training.learning_rate: [0.001, 0.0005] } }`,
    });
    const r = await expIn(['run', file], { env: env(), cwd: tmp });
    assert.equal(r.code, 0, r.stderr + r.stdout);
    sweep = join(tmp, 'runs', 'tiny', readdirSync(join(tmp, 'runs', 'tiny'))[0]!);
    runs = readdirSync(sweep)
      .filter((d) => existsSync(join(sweep, d, 'run.json')))
      .sort()
      .map((d) => join(sweep, d));
  },
  { timeout: 600_000 },
);

after(async () => {
  await server?.dispose();
});

test('exp tag labels a run locally and in MLflow; exp runs --filter finds it', async () => {
  const r = await expIn(['tag', runs[0]!, 'team=vision', 'note=first try'], { env: env(), cwd: tmp });
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /sent to MLflow run/);
  const rec = JSON.parse(readFileSync(join(runs[0]!, 'run.json'), 'utf8')) as { tags: Record<string, string> };
  assert.deepEqual(rec.tags, { team: 'vision', note: 'first try' });
  assert.equal(toRecord((await api.getRun(runId(runs[0]!))).data.tags).team, 'vision');
  const found = await expIn(['runs', '--filter', "tags.team = 'vision'", '--json'], { env: env(), cwd: tmp });
  assert.deepEqual(
    (JSON.parse(found.stdout) as { dir: string }[]).map((x) => x.dir),
    [runs[0]],
  );
  const bad = await expIn(['tag', runs[0]!, 'mlflow.user=x'], { env: env(), cwd: tmp });
  assert.equal(bad.code, 2);
  assert.match(bad.stderr, /reserved/);
});

test('exp gc frees the last checkpoints of finished runs and keeps the best', async () => {
  const dry = await expIn(['gc', '--dry-run'], { env: env(), cwd: tmp });
  assert.equal(dry.code, 0, dry.stderr);
  assert.equal(dry.stdout.match(/would remove .*checkpoints\/last/g)?.length, 2, dry.stdout);
  assert.ok(runs.every((d) => existsSync(join(d, 'checkpoints', 'last'))));
  const gc = await expIn(['gc'], { env: env(), cwd: tmp });
  assert.equal(gc.code, 0, gc.stderr);
  assert.match(gc.stdout, /freed [\d.]+ MiB \(2 items in 2 run folders\)/);
  for (const d of runs) {
    assert.equal(existsSync(join(d, 'checkpoints', 'last')), false);
    assert.ok(existsSync(join(d, 'checkpoints', 'best', 'state.json')));
  }
});

test('exp rm removes only what exp wrote: a folder that merely has a config.yaml is refused and kept', async () => {
  const mine = join(tmp, 'my-project');
  mkdirSync(mine);
  writeFileSync(join(mine, 'config.yaml'), 'name: not a run\n');
  const r = await expIn(['rm', mine, '--yes'], { env: env(), cwd: tmp });
  assert.equal(r.code, 2, r.stdout + r.stderr);
  assert.match(r.stderr, /NOT_A_RUN_FOLDER/);
  assert.ok(existsSync(join(mine, 'config.yaml')));
});

test('exp rm lists without --yes, then removes the folder and its index entry and deletes its MLflow run', async () => {
  const id = runId(runs[1]!);
  const dry = await expIn(['rm', runs[1]!], { env: env(), cwd: tmp });
  assert.equal(dry.code, 0, dry.stderr);
  assert.match(dry.stdout, /Nothing removed: add --yes/);
  assert.ok(existsSync(runs[1]!));
  const rm = await expIn(['rm', runs[1]!, '--yes'], { env: env(), cwd: tmp });
  assert.equal(rm.code, 0, rm.stderr);
  assert.match(rm.stdout, new RegExp(`MLflow run ${id} marked deleted`));
  assert.equal(existsSync(runs[1]!), false);
  const index = JSON.parse(readFileSync(join(sweep, 'index.json'), 'utf8')) as { points: { dir: string }[] };
  assert.deepEqual(
    index.points.map((p) => join(sweep, p.dir)),
    [runs[0]],
  );
  assert.equal((await api.getRun(id)).info.lifecycle_stage, 'deleted');
  const listed = await expIn(['compare', sweep, '--json'], { env: env(), cwd: tmp });
  assert.equal((JSON.parse(listed.stdout) as unknown[]).length, 1);
});
