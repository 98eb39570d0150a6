import { existsSync, readdirSync, renameSync, rmSync, statSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { defineCommand } from './command.js';
import { EXIT, cwdOf } from './io.js';
import { BACKEND_FLAG, type BackendChoice, CHECKPOINT_FLAG, FORCE_OUTPUT_FLAG, RUNS_DIR_FLAG } from './flags.js';
import { displayPath } from './report.js';
import { checkOutputTarget, modelFolder } from './model-use.js';
import { UsageError } from '../errors.js';
import { checkWritableFile, readFileBounded } from '../util/fsx.js';

/**
 * A folder --out may replace: missing, empty, or an earlier exp export (model.json written by
 * exp export and its weight shards, nothing else). Never a folder that holds anything more.
 */
function checkTfjsTarget(out: string): void {
  if (!existsSync(out)) return;
  if (!statSync(out).isDirectory()) {
    checkWritableFile(out, '--out'); // a device or FIFO is named as such
    throw new UsageError({
      code: 'BAD_OPTION_VALUE',
      message: `${out} is a file; --format tfjs writes a folder`,
      fix: 'give a new folder, e.g. --out model-tfjs',
    });
  }
  const files = readdirSync(out);
  if (files.length === 0) return;
  const ours = files.every((f) => f === 'model.json' || /^group\d+-shard\d+of\d+\.bin$/.test(f));
  let fromExp = false;
  try {
    fromExp =
      (JSON.parse(readFileBounded(join(out, 'model.json'), 64 * 2 ** 20, 'model.json').toString('utf8')) as { convertedBy?: string }).convertedBy ===
      'exp export';
  } catch {
    fromExp = false;
  }
  if (!ours || !fromExp)
    throw new UsageError({
      code: 'BAD_OPTION_VALUE',
      message: `${out} is a folder that is not an earlier exp export; exp will not replace it`,
      fix: 'give a new or empty folder',
    });
}

export const exportCommand = defineCommand({
  name: 'export',
  summary: 'Write a trained run (or an ensemble) as a Keras HDF5 model file or a TensorFlow.js model.',
  usage: 'export RUN --format keras-h5|tfjs --out PATH [--checkpoint best|last] [--force] [--backend NAME]',
  details: [
    "keras-h5: one file in Keras's HDF5 layout (architecture and weights) that Python opens with",
    '  keras.models.load_model(PATH); Keras 2 and 3 read it. The input is image_size x image_size x 3, already',
    '  preprocessed (caffe: RGB to BGR minus the ImageNet mean); the output is one sigmoid probability per tag.',
    'tfjs: a folder with model.json and weight shards that tf.loadLayersModel("file://PATH/model.json") loads.',
    'Both carry the tag vocabulary, the thresholds, the image size, the resize and the preprocessing (exp_metadata, a JSON',
    'attribute of the HDF5 file; userDefinedMetadata.exp in model.json), so a consumer needs nothing else. An ensemble',
    "exports as one model that averages its members' outputs. An existing keras-h5 --out is replaced only when exp export",
    'wrote it (or with --force); a device, FIFO or folder never is.',
  ].join('\n'),
  positionals: { name: 'RUN', min: 1, max: 1 },
  flags: {
    format: { type: 'string', arg: 'FORMAT', choices: ['keras-h5', 'tfjs'], description: 'keras-h5 (a .h5 file) or tfjs (a folder) (required).' },
    out: { type: 'string', arg: 'PATH', description: 'The file (keras-h5) or folder (tfjs) to write (required).' },
    checkpoint: CHECKPOINT_FLAG,
    force: FORCE_OUTPUT_FLAG,
    backend: BACKEND_FLAG,
    'runs-dir': RUNS_DIR_FLAG,
  },
  async run(args, flags, io) {
    const cwd = cwdOf(io);
    if (!flags.format || !flags.out)
      throw new UsageError({ code: 'USAGE', message: 'exp export needs --format and --out', fix: 'e.g. exp export RUN --format keras-h5 --out model.h5' });
    const out = resolve(cwd, flags.out);
    if (!existsSync(dirname(out)))
      throw new UsageError({ code: 'PATH_NOT_FOUND', message: `the folder of ${flags.out} does not exist`, fix: `create ${dirname(out)} first` });
    const { isExpKerasFile } = await import('../infer/keras-export.js');
    if (flags.format === 'tfjs') checkTfjsTarget(out);
    else if (existsSync(out) && statSync(out).isDirectory())
      throw new UsageError({ code: 'BAD_OPTION_VALUE', message: `${flags.out} is a folder; --format keras-h5 writes a file`, fix: 'e.g. --out model.h5' });
    else await checkOutputTarget(out, '--out', isExpKerasFile, flags.force); // before the model loads: a refusal costs nothing
    const { dir, ensemble } = modelFolder(args[0]!, io, flags['runs-dir']);
    const { loadPredictor } = await import('../infer/predictor.js');
    const model = await loadPredictor(dir, ensemble, flags.backend as BackendChoice, flags.checkpoint ? { checkpoint: flags.checkpoint } : {});
    try {
      const net = model.runs.length === 1 ? model.runs[0]!.model : await (await import('../infer/combine.js')).combineModels(model.runs.map((r) => r.model));
      const meta = model.metadata();
      if (flags.format === 'keras-h5') {
        const { writeKerasModel } = await import('../infer/keras-export.js');
        // Written beside the target, then renamed: an interrupted export never leaves half a file.
        const tmp = join(dirname(out), `.${process.pid}.export.h5`);
        try {
          await writeKerasModel(net, tmp, meta);
          checkWritableFile(out, '--out'); // again: the rename would replace whatever is there now
          renameSync(tmp, out);
        } finally {
          rmSync(tmp, { force: true });
        }
      } else {
        const { writeTfjsModel } = await import('../infer/tfjs-export.js');
        const { replaceDirAtomic } = await import('../util/fsx.js');
        await replaceDirAtomic(out, async (tmp) => {
          await writeTfjsModel(net, tmp, meta);
        });
      }
      if (net !== model.runs[0]!.model) net.dispose();
      const bytes = flags.format === 'tfjs' ? readdirSync(out).reduce((a, f) => a + statSync(join(out, f)).size, 0) : statSync(out).size;
      io.stdout.write(
        `wrote ${displayPath(out, cwd)} (${flags.format}, ${(bytes / 2 ** 20).toFixed(1)} MiB): ${model.kind} ${displayPath(dir, cwd)}, ${model.tags.length} tags, ${model.cfg.data.image_size}x${model.cfg.data.image_size} input, preprocessing ${model.cfg.model.preprocessing}, thresholds ${model.thresholdsFrom}\n`,
      );
      return EXIT.ok;
    } finally {
      model.dispose();
    }
  },
});
