/**
 * The logged model: a run's best checkpoint as an MLflow 3 logged model (named 'model', source
 * run = the run), built from the run folder when the `model` event is sent, so the folder keeps
 * no copy of it.
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ExpError } from '../errors.js';
import { MlflowError } from '../mlflow/client.js';
import { hasCheckpointState } from '../store/folder.js';
import { readPoint } from '../store/run.js';
import type { SinkContext } from './sink-state.js';

/**
 * Logs the best checkpoint as an MLflow model: a logged model (made once, remembered in the
 * sink state), its files (built from the run folder into a scratch folder) uploaded to its
 * artifact location, then READY and linked to the run as an output. A folder whose checkpoint
 * is gone (exp gc) has nothing to log: a warning.
 */
export async function logModel(sink: SinkContext, name: string, step: number): Promise<void> {
  const s = sink.state;
  if (s.model?.ready) return;
  if (!hasCheckpointState(sink.dir, 'best')) {
    sink.warnings.push('model: the run folder has no best checkpoint any more; not logged');
    return;
  }
  if (!s.model) {
    const point = readPoint(sink.dir);
    const info = await sink.client.createLoggedModel({
      experimentId: s.experimentId,
      name,
      sourceRunId: s.runId!,
      modelType: 'keras',
      tags: { 'exp.key': point.key, 'exp.uid': point.uid },
    });
    s.model = { id: info.model_id, artifactUri: info.artifact_uri, ready: false };
    sink.save();
  }
  const scratch = mkdtempSync(join(tmpdir(), 'exp-model-'));
  try {
    // Loaded here: only a sink with a model to log needs TensorFlow.js and h5wasm.
    const { writeMlflowModel } = await import('../infer/mlflow-model.js');
    let files: string[];
    try {
      files = await writeMlflowModel(sink.dir, scratch, { runId: s.runId!, modelId: s.model.id });
    } catch (e) {
      // The folder cannot give a model (its base weights file is gone, its checkpoint does not
      // fit): that will not change by retrying, and must not hold up the rest of the run's log.
      if (e instanceof MlflowError || !(e instanceof ExpError)) throw e;
      sink.warnings.push(`model: not logged: ${e.message} [${e.code}]`);
      await sink.client.finalizeLoggedModel(s.model.id, 'LOGGED_MODEL_UPLOAD_FAILED').catch(() => undefined);
      return;
    }
    for (const f of files) await sink.client.uploadArtifact(s.model.artifactUri, f, readFileSync(join(scratch, f)));
  } finally {
    rmSync(scratch, { recursive: true, force: true });
  }
  await sink.client.finalizeLoggedModel(s.model.id, 'LOGGED_MODEL_READY');
  await sink.client.logOutputs(s.runId!, [{ modelId: s.model.id, step }]);
  s.model.ready = true;
  sink.save();
}
