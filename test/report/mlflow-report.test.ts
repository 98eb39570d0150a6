/**
 * exp's MLflow side of the sweep report, against a real MLflow server: experiments exp creates
 * are tagged mlflow.experimentKind=custom_model_development (MLflow 3 then opens them on the
 * training runs, not the GenAI overview), a user's own experiment keeps its kind; and the
 * sweep's parent run gets report.html (the page exp report draws) once every point has ended,
 * not before, and its note links to it.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { MLFLOW_BIN, startMlflow, type MlflowServer } from '../helpers/mlflow-server.js';
import { MlflowClient, toRecord } from '../../src/mlflow/client.js';
import { ensureParent } from '../../src/track/sync-runs.js';
import { refreshParent } from '../../src/track/sweep-parent.js';
import { readSweepState } from '../../src/track/sink-state.js';
import { GENERATOR } from '../../src/report/html.js';
import { writeSweep } from './fixture.js';

let server: MlflowServer | undefined;
let client: MlflowClient;

before(
  async () => {
    if (!existsSync(MLFLOW_BIN)) return;
    server = await startMlflow();
    client = new MlflowClient({ uri: server.uri, backoffMs: 50 });
  },
  { timeout: 180_000 },
);
after(async () => {
  await server?.dispose();
});

const kindOf = async (id: string): Promise<string | undefined> => (await client.getExperiment(id)).tags.find((t) => t.key === 'mlflow.experimentKind')?.value;

test("an experiment exp creates is tagged mlflow.experimentKind=custom_model_development; a user's experiment keeps its own kind", async (t) => {
  if (!server) return t.skip(`${MLFLOW_BIN} is missing: run bash scripts/setup-test-env.sh`);
  const id = await client.getOrCreateExperiment('kind-new');
  assert.equal(await kindOf(id), 'custom_model_development');
  // Created by a user (MLflow's REST API, as the Python client does) with another kind: exp uses it as it is.
  const r = await fetch(`${server.uri}/api/2.0/mlflow/experiments/create`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ name: 'kind-user', tags: [{ key: 'mlflow.experimentKind', value: 'genai_development' }] }),
  });
  const body = await r.text();
  assert.equal(r.status, 200, body);
  const userId = (JSON.parse(body) as { experiment_id: string }).experiment_id;
  assert.equal(await client.getOrCreateExperiment('kind-user'), userId);
  assert.equal(await kindOf(userId), 'genai_development');
  // And one with no kind at all is not given one: exp did not create it.
  const plain = await fetch(`${server.uri}/api/2.0/mlflow/experiments/create`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: '{"name":"kind-none"}',
  });
  const plainId = ((await plain.json()) as { experiment_id: string }).experiment_id;
  assert.equal(await client.getOrCreateExperiment('kind-none'), plainId);
  assert.equal(await kindOf(plainId), undefined);
});

test("the sweep's parent run gets report.html once every point has ended, not while points still train", async (t) => {
  if (!server) return t.skip(`${MLFLOW_BIN} is missing: run bash scripts/setup-test-env.sh`);
  const target = { trackingUri: server.uri, experiment: 'demo' };
  const experimentId = await client.getOrCreateExperiment('demo');
  const parentOf = async (sweep: string): Promise<string> => {
    await ensureParent(sweep, client, target, experimentId, { experiment: 'demo', sweep: 'sweep-rep', sweepUid: `uid-${sweep}`, facts: {} });
    assert.deepEqual(await refreshParent(sweep, client, target), []);
    return readSweepState(sweep, target)!.parentRunId;
  };
  const running = await parentOf(writeSweep({ points: 4, running: 1, seed: 'mlflow-running' }));
  const files = async (run: string): Promise<string[]> => (await client.listArtifacts(run)).map((f) => f.path).sort();
  assert.deepEqual(await files(running), ['index.json', 'sweep.yaml']);
  const ended = await parentOf(writeSweep({ points: 4, seed: 'mlflow-ended' }));
  assert.deepEqual(await files(ended), ['index.json', 'report.html', 'sweep.yaml']);
  const html = Buffer.from(await client.downloadArtifact(ended, 'report.html')).toString('utf8');
  assert.ok(html.includes(GENERATOR));
  assert.match(html, /data-panel="importance"/);
  assert.match(html, /data-best="p\d-/);
  // The parent's note says where the report is; while points train it does not.
  const note = async (run: string): Promise<string> => toRecord((await client.getRun(run)).data.tags)['mlflow.note.content'] ?? '';
  assert.ok((await note(ended)).includes(`[report.html](${server.uri}/#/experiments/${experimentId}/runs/${ended}/artifacts/report.html)`), await note(ended));
  assert.doesNotMatch(await note(running), /report\.html/);
});
