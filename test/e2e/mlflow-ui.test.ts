/**
 * The MLflow UI shows what exp records, seen through a real browser: a sweep's parent run
 * with two child runs (tagged as the sink tags them), a val_loss history, the dataset and the
 * logged model on a child's page, logged with the
 * REST client into a real server, then opened in headless Debian Chromium (playwright-core).
 * Screenshots land in test-artifacts/ for a person to look at. Also `exp ui`: it starts a
 * server over a project-local store, prints its URL, and stops on Ctrl-C.
 *
 * MLflow 3.17 opens experiments in its GenAI view by default. exp tags the experiments it
 * creates mlflow.experimentKind=custom_model_development, but in a fresh browser profile the
 * plain experiment URL still opened the GenAI overview (tried 2026-12-02), so the runs table,
 * the "Model training" view, is chosen here with the URL's workflowType=machine_learning.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium, type BrowserContext, type Page } from 'playwright-core';
import { BIN, ROOT, exp, tempDir } from '../helpers/cli.js';
import { MLFLOW_BIN, freePort, startMlflow, type MlflowServer } from '../helpers/mlflow-server.js';
import { MlflowClient } from '../../src/mlflow/client.js';
import { datasetInputs } from '../../src/track/sync-map.js';

const CHROMIUM = '/usr/bin/chromium';
const ARTIFACTS = join(ROOT, 'test-artifacts');
const WAIT = 120_000; // a cold SPA load on two busy cores can take a while

let server: MlflowServer | undefined;
let api: MlflowClient;

before(
  async () => {
    if (!existsSync(CHROMIUM)) return;
    server = await startMlflow();
    console.log(`# mlflow server up in ${server.startMs} ms at ${server.uri}`);
    api = new MlflowClient({ uri: server.uri, backoffMs: 50 });
  },
  { timeout: 180_000 },
);

after(async () => {
  await server?.dispose();
});

/** A sweep as the sink records it: a parent run and two children with a val_loss history, all finished. */
async function logSweep(): Promise<{ experimentId: string; children: { id: string; name: string; history: number[] }[] }> {
  const experimentId = await api.getOrCreateExperiment('ui-e2e');
  const parent = await api.createRun({
    experimentId,
    runName: 'sweep-ui',
    tags: { 'mlflow.runName': 'sweep-ui', 'exp.experiment': 'ui-e2e', 'exp.sweep': 'sweep-ui' },
  });
  const children = [];
  for (const [name, history] of [
    ['learning_rate=0.001-aaaa1111', [0.71, 0.52, 0.43, 0.38]],
    ['learning_rate=0.01-bbbb2222', [0.69, 0.61, 0.58, 0.57]],
  ] as const) {
    const run = await api.createRun({ experimentId, runName: name, parentRunId: parent.run_id, tags: { 'mlflow.runName': name } });
    await api.logBatch(run.run_id, {
      metrics: [
        ...history.map((value, i) => ({ key: 'val_loss', value, step: i + 1 })),
        { key: 'final_val_fbeta', value: 0.9 - history[history.length - 1]!, step: history.length },
      ],
      params: { 'training.learning_rate': name.split('=')[1]!.split('-')[0]! },
    });
    // As the sink logs them: the dataset (logged inputs) and the model (an MLflow 3 logged model).
    await api.logInputs(
      run.run_id,
      datasetInputs({
        type: 'dataset',
        name: 'planet-synth',
        digest: 'f00dfeed',
        source: '/data/planet-synth',
        split_hash: 'abc123',
        profile: { images: 1000 },
      }),
    );
    const model = await api.createLoggedModel({ experimentId, name: 'model', sourceRunId: run.run_id, modelType: 'keras' });
    await api.uploadArtifact(model.artifact_uri, 'MLmodel', 'artifact_path: model\nflavors:\n  python_function:\n    loader_module: exp_pyfunc\n');
    await api.finalizeLoggedModel(model.model_id, 'LOGGED_MODEL_READY');
    await api.logOutputs(run.run_id, [{ modelId: model.model_id, step: history.length }]);
    await api.updateRun(run.run_id, 'FINISHED');
    children.push({ id: run.run_id, name, history: [...history] });
  }
  await api.updateRun(parent.run_id, 'FINISHED');
  return { experimentId, children };
}

async function shot(page: Page, name: string): Promise<void> {
  mkdirSync(ARTIFACTS, { recursive: true });
  await page.screenshot({ path: join(ARTIFACTS, `mlflow-ui-${name}.png`) });
}

test("the MLflow UI lists the sweep with its children nested, and charts a child's val_loss", { timeout: 600_000 }, async (t) => {
  if (!existsSync(CHROMIUM)) {
    t.skip(`${CHROMIUM} is missing: install Debian's chromium (bash scripts/setup-test-env.sh does, as root)`);
    return;
  }
  const { experimentId, children } = await logSweep();
  const profile = mkdtempSync(join(tmpdir(), 'exp-chromium-'));
  let context: BrowserContext | undefined;
  let page: Page | undefined;
  const t0 = Date.now();
  const step = (what: string): void => console.log(`# ${what} after ${((Date.now() - t0) / 1000).toFixed(1)} s`);
  try {
    context = await chromium.launchPersistentContext(profile, {
      executablePath: CHROMIUM,
      headless: true,
      viewport: { width: 1400, height: 900 },
      timeout: WAIT,
      args: [
        '--headless',
        '--no-sandbox',
        '--disable-gpu',
        '--disable-quic',
        '--no-first-run',
        '--disable-background-networking',
        '--disable-component-update',
        '--disable-sync',
      ],
    });
    page = context.pages()[0] ?? (await context.newPage());
    page.setDefaultTimeout(WAIT);

    // The experiment's runs: the parent is listed, its children folded under it.
    await page.goto(`${server!.uri}/#/experiments/${experimentId}?workflowType=machine_learning`, { timeout: WAIT });
    const parentCell = page.getByRole('gridcell').filter({ hasText: 'sweep-ui' });
    await parentCell.first().waitFor();
    await page.getByText('3 matching runs').waitFor();
    step('experiment page');
    await shot(page, '1-experiment');
    if (!(await page.getByRole('link', { name: children[0]!.name }).isVisible())) await parentCell.getByRole('button').first().click();
    for (const c of children) await page.getByRole('link', { name: c.name }).waitFor();
    step('children shown');
    await shot(page, '2-children-expanded');

    // A child's page: its Model metrics tab draws the val_loss history.
    const child = children[0]!;
    await page.getByRole('link', { name: child.name }).click();
    await page.waitForURL(new RegExp(`/runs/${child.id}`));
    await page.getByText('Model metrics', { exact: true }).first().click();
    const card = page.locator('[data-testid="experiment-view-compare-runs-card"]').filter({ hasText: 'val_loss' });
    await card.first().waitFor();
    await card.first().locator('.js-plotly-plot').waitFor();
    await card.first().getByText(`${child.name} (val_loss)`).waitFor(); // the legend names the run and the metric
    await card.first().getByText('Step', { exact: true }).waitFor();
    step('val_loss chart');
    await shot(page, '3-child-val_loss-chart');

    // The child's overview names its dataset and its logged model.
    await page.goto(`${server!.uri}/#/experiments/${experimentId}/runs/${child.id}`, { timeout: WAIT });
    await page.getByText('planet-synth').first().waitFor();
    step('dataset shown');
    await page.getByRole('link', { name: 'model', exact: true }).first().waitFor();
    step('logged model shown');
    await shot(page, '4-child-dataset-and-model');

    // MLflow's compare page over the children (the parent's note links it): the swept setting and the ranking metric.
    const ids = JSON.stringify(children.map((c) => c.id));
    await page.goto(`${server!.uri}/#/compare-runs?runs=${encodeURIComponent(ids)}&experiments=${encodeURIComponent(JSON.stringify([experimentId]))}`, {
      timeout: WAIT,
    });
    await page.getByText('training.learning_rate').first().waitFor();
    await page.getByText('final_val_fbeta').first().waitFor();
    for (const c of children) await page.getByText(c.name).first().waitFor();
    step('compare page');
    await shot(page, '5-compare-children');
  } catch (e) {
    if (page) await shot(page, 'failure').catch(() => undefined);
    throw new Error(`${(e as Error).message}\nscreenshot: ${join(ARTIFACTS, 'mlflow-ui-failure.png')}\nmlflow log (tail):\n${server?.log().slice(-2000)}`, {
      cause: e,
    });
  } finally {
    await context?.close();
    rmSync(profile, { recursive: true, force: true });
  }
});

test('exp ui serves MLflow over a project-local store, prints its URL and export line, and stops on Ctrl-C', { timeout: 300_000 }, async (t) => {
  if (!existsSync(MLFLOW_BIN)) {
    t.skip(`${MLFLOW_BIN} is missing: run bash scripts/setup-test-env.sh`);
    return;
  }
  const tmp = tempDir('exp-ui-');
  try {
    // Without MLflow: a clear error that says how to install it.
    const missing = exp(['ui'], { cwd: tmp, env: { PATH: '/nonexistent' } });
    assert.equal(missing.code, 1);
    assert.match(missing.stderr, /MLflow is not installed.*\n.*python3 -m venv \.venv && \.venv\/bin\/pip install mlflow==3\.17\.2/);

    const port = await freePort();
    const store = join(tmp, 'store');
    const child = spawn(process.execPath, [BIN, 'ui', '--port', String(port), '--store', store, '--print-env'], {
      cwd: ROOT,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    child.stdout.on('data', (b: Buffer) => {
      out += b.toString();
    });
    child.stderr.on('data', (b: Buffer) => {
      out += b.toString();
    });
    const exited = new Promise<number | null>((r) => child.once('exit', (c) => r(c)));
    const deadline = Date.now() + 150_000;
    while (!out.includes('Press Ctrl-C') && child.exitCode === null && Date.now() < deadline) await new Promise((r) => setTimeout(r, 200));
    const uri = `http://127.0.0.1:${port}`;
    assert.match(out, new RegExp(`^MLflow UI: ${uri}$`, 'm'), out);
    assert.match(out, new RegExp(`^export MLFLOW_TRACKING_URI=${uri}$`, 'm'));
    assert.ok(existsSync(join(store, 'mlflow.db')) && existsSync(join(store, 'artifacts')), 'the store holds mlflow.db and artifacts/');
    // The server is a tracking server too: what `exp sync` would talk to.
    const id = await new MlflowClient({ uri }).getOrCreateExperiment('via-exp-ui');
    assert.match(id, /^\d+$/);
    child.kill('SIGINT');
    assert.equal(await exited, 0, out);
    await assert.rejects(fetch(`${uri}/health`, { signal: AbortSignal.timeout(2000) }), 'the server is gone after Ctrl-C');
  } finally {
    rmSync(tmp, { recursive: true, force: true });
  }
});
