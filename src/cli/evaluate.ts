import { resolve } from 'node:path';
import { defineCommand } from './command.js';
import { EXIT, cwdOf } from './io.js';
import { BACKEND_FLAG, type BackendChoice, CHECKPOINT_FLAG, RUNS_DIR_FLAG, THRESHOLDS_FLAG, TTA_FLAG } from './flags.js';
import { displayPath, table } from './report.js';
import { modelFolder, progressLine, thresholdsFor } from './model-use.js';

const f4 = (v: number): string => v.toFixed(4);

export const evaluateCommand = defineCommand({
  name: 'evaluate',
  summary: 'Score a trained run (or an ensemble) on its validation split or on any Planet-format folder.',
  usage: 'evaluate RUN [--data DIR] [--split val|train|all] [--tta] [--thresholds tuned|P] [--checkpoint best|last] [--json] [--backend NAME]',
  details: [
    "RUN is a run folder, a run key (or a prefix), or an ensemble folder made by `exp ensemble`. The model is the run's best",
    'checkpoint (its last when it never saved a best; a damaged best is an error, and --checkpoint last uses the last).',
    'Reported: binary cross-entropy (as training computes it), the exact',
    "sample-averaged F-beta (the Kaggle metric, with the run's beta), per tag precision, recall, F-beta, support and the",
    'confusion counts, and their micro and macro averages. --data scores another folder in the Planet layout',
    "(train_v2.csv and train-jpg/, or the folder names of the run's data settings) whose tags the run knows.",
  ].join('\n'),
  positionals: { name: 'RUN', min: 1, max: 1 },
  flags: {
    data: { type: 'string', arg: 'DIR', description: "A labelled Planet-format folder to score instead of the run's own data." },
    split: {
      type: 'string',
      arg: 'NAME',
      default: 'val',
      choices: ['val', 'train', 'all'],
      description: "Which part of the run's own data (ignored with --data).",
    },
    tta: TTA_FLAG,
    thresholds: THRESHOLDS_FLAG,
    checkpoint: CHECKPOINT_FLAG,
    backend: BACKEND_FLAG,
    'runs-dir': RUNS_DIR_FLAG,
    json: { type: 'boolean', description: 'Print the scores as JSON: {model, data, images, loss, fbeta, micro, macro, perTag, confusion, thresholds, ...}.' },
  },
  async run(args, flags, io) {
    thresholdsFor(flags.thresholds, []); // a bad value is refused before the model loads
    const { dir, ensemble } = modelFolder(args[0]!, io, flags['runs-dir']);
    const { loadPredictor } = await import('../infer/predictor.js');
    const { labelledImages } = await import('../infer/dataset.js');
    const { scorePredictions } = await import('../infer/scores.js');
    const { evalBatchSize } = await import('../core/predict.js');
    const model = await loadPredictor(dir, ensemble, flags.backend as BackendChoice, {
      tuned: flags.thresholds === 'tuned',
      ...(flags.checkpoint ? { checkpoint: flags.checkpoint } : {}),
    });
    try {
      const { thresholds, from } = thresholdsFor(flags.thresholds, model.thresholds);
      const data = await labelledImages(model.runs[0]!.dir, model.cfg, model.tags, {
        split: flags.split as 'val' | 'train' | 'all',
        ...(flags.data ? { data: resolve(cwdOf(io), flags.data) } : {}),
        onProgress: (m) => io.stderr.write(`${m}\n`),
      });
      const t0 = performance.now();
      const probs = await model.predict(data.ds.pixels, data.indices, { tta: flags.tta, onBatch: progressLine(io, 'scoring') });
      const seconds = (performance.now() - t0) / 1000;
      const s = scorePredictions(probs, data.targets, model.tags, model.cfg.metrics.beta, thresholds, evalBatchSize(model.cfg));
      const about = {
        model: dir,
        kind: model.kind,
        data: data.source,
        tta: flags.tta,
        thresholds_from: flags.thresholds === 'tuned' ? model.thresholdsFrom : 'flag',
        backend: model.backend.name,
        beta: model.cfg.metrics.beta,
        images_per_second: data.indices.length / seconds,
      };
      if (flags.json) {
        io.stdout.write(`${JSON.stringify({ ...about, ...s })}\n`);
        return EXIT.ok;
      }
      const b = model.cfg.metrics.beta;
      io.stdout.write(
        `${model.kind} ${displayPath(dir, io.cwd)} on ${data.source}: ${s.images} images${flags.tta ? ', 8-way TTA' : ''}, thresholds ${from} (${model.thresholdsFrom === 'config' && flags.thresholds === 'tuned' ? 'metrics.threshold: the run has no thresholds.json' : model.thresholdsFrom}), ${model.backend.name}\n`,
      );
      io.stdout.write(`loss ${f4(s.loss)}   F${b} ${f4(s.fbeta)} (sample-averaged)   micro F${b} ${f4(s.micro.fbeta)}   macro F${b} ${f4(s.macro.fbeta)}\n\n`);
      const rows = model.tags.map((t) => {
        const p = s.perTag[t]!,
          c = s.confusion[t]!;
        return [
          t,
          String(p.support),
          f4(p.precision),
          f4(p.recall),
          f4(p.fbeta),
          String(c.tp),
          String(c.fp),
          String(c.fn),
          String(c.tn),
          s.thresholds[t]!.toFixed(2),
        ];
      });
      for (const [name, a] of [
        ['micro', s.micro],
        ['macro', s.macro],
      ] as const)
        rows.push([`(${name})`, String(a.support), f4(a.precision), f4(a.recall), f4(a.fbeta), '', '', '', '', '']);
      io.stdout.write(table(['tag', 'support', 'precision', 'recall', `F${b}`, 'tp', 'fp', 'fn', 'tn', 'threshold'], rows));
      io.stdout.write(`\n${data.indices.length} images in ${seconds.toFixed(1)} s (${about.images_per_second.toFixed(1)} img/s)\n`);
      return EXIT.ok;
    } finally {
      model.dispose();
    }
  },
});
