/**
 * A run's best model as an MLflow model folder, what `mlflow.pyfunc.load_model` opens:
 *
 *   MLmodel                  flavors: python_function (loader_module exp_pyfunc, code/, data/)
 *   data/model.h5            the whole Keras model (exp export --format keras-h5)
 *   data/exp_metadata.json   tags, thresholds, image size, resize, preprocessing
 *   code/exp_pyfunc.py       the loader (python/exp_pyfunc.py of this package)
 *   python_env.yaml, requirements.txt   what it needs: keras with tensorflow, pillow, pandas
 *
 * Written to a scratch folder for upload (the sink deletes it after), not kept in the run folder.
 */
import { copyFileSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { stringify } from 'yaml';

import { exportMetadata, restoreRun } from './restore.js';
import { writeKerasModel } from './keras-export.js';

/** The loader module shipped with exp, copied into each model's code/ folder. */
const PYFUNC = fileURLToPath(new URL('../../python/exp_pyfunc.py', import.meta.url));

/** Python packages the loader needs (versions the round trip was tested with are in the README). */
const REQUIREMENTS = ['mlflow', 'tensorflow-cpu>=2.13', 'keras', 'h5py', 'pillow', 'pandas', 'numpy'];

/** Writes the MLflow model of run folder `dir` into `out` (created); returns the files written, relative to `out`. */
export async function writeMlflowModel(dir: string, out: string, info: { runId: string; modelId?: string }): Promise<string[]> {
  // On the cpu backend: the model is only serialised, and a GPU backend would reserve the GPU's
  // memory in a process (exp sync, a finishing trainer) that may share it with running training.
  const run = await restoreRun(dir, { backend: 'cpu' });
  try {
    mkdirSync(join(out, 'data'), { recursive: true });
    mkdirSync(join(out, 'code'), { recursive: true });
    const meta = exportMetadata(run);
    await writeKerasModel(run.model, join(out, 'data', 'model.h5'), meta);
    writeFileSync(join(out, 'data', 'exp_metadata.json'), JSON.stringify(meta, null, 2) + '\n');
    copyFileSync(PYFUNC, join(out, 'code', 'exp_pyfunc.py'));
    const python = '3.11';
    writeFileSync(join(out, 'python_env.yaml'), stringify({ python, build_dependencies: ['pip'], dependencies: ['-r requirements.txt'] }));
    writeFileSync(join(out, 'requirements.txt'), REQUIREMENTS.join('\n') + '\n');
    const size = run.cfg.data.image_size;
    writeFileSync(
      join(out, 'MLmodel'),
      stringify({
        artifact_path: 'model',
        flavors: {
          python_function: { loader_module: 'exp_pyfunc', code: 'code', data: 'data', env: { virtualenv: 'python_env.yaml' }, python_version: python },
        },
        ...(info.modelId ? { model_id: info.modelId } : {}),
        run_id: info.runId,
        utc_time_created: new Date().toISOString().replace('T', ' ').replace('Z', ''),
        metadata: {
          exp: {
            tags: run.tags.join(' '),
            thresholds: run.thresholds.join(' '),
            image_size: size,
            resize: run.cfg.data.resize,
            preprocessing: run.cfg.model.preprocessing,
          },
        },
      }),
    );
    return ['MLmodel', 'python_env.yaml', 'requirements.txt', 'code/exp_pyfunc.py', 'data/exp_metadata.json', 'data/model.h5'];
  } finally {
    run.model.dispose();
  }
}
