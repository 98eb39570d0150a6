import { resolve } from 'node:path';
import { defineCommand } from './command.js';
import { EXIT, cwdOf, type Io } from './io.js';
import { BACKEND_FLAG, type BackendChoice, CHECKPOINT_FLAG, FORCE_OUTPUT_FLAG, RUNS_DIR_FLAG, THRESHOLDS_FLAG, TTA_FLAG } from './flags.js';
import { displayPath } from './report.js';
import { checkOutputTarget, firstLine, modelFolder, progressLine, thresholdsFor } from './model-use.js';
import { DataError, UsageError } from '../errors.js';
import { writeFileAtomic } from '../util/fsx.js';
import type { Predictor } from '../infer/predictor.js';
import type { ImageList } from '../infer/images.js';

/** Images decoded and scored at a time: bounds memory (4,096 x 128 x 128 x 3 is 200 MB of pixels) for test sets of any size. */
const CHUNK = 4096;

/** --ext: a file extension (png or .png), with its dot. */
function extOf(flag: string | undefined): string | undefined {
  if (flag === undefined) return undefined;
  const ext = flag.startsWith('.') ? flag : `.${flag}`;
  if (!/^\.[A-Za-z0-9]{1,10}$/.test(ext))
    throw new UsageError({ code: 'BAD_OPTION_VALUE', message: `--ext must be a file extension such as .jpg or png, not '${flag}'`, fix: 'e.g. --ext .png' });
  return ext;
}

export const predictCommand = defineCommand({
  name: 'predict',
  summary: 'Predict tags for a folder of images (or a sample-submission CSV) and write a Kaggle submission.',
  usage: 'predict RUN IMAGES_DIR|CSV --out submission.csv|- [--probabilities probs.csv] [--tta] [--thresholds tuned|P] [--ext .jpg] [--images DIR,...]',
  details: [
    'RUN is a run folder, a run key (or a prefix), or an ensemble folder made by `exp ensemble`. IMAGES_DIR: every image',
    "with the run's extension (data.image_ext), in natural name order (test_2 before test_10). CSV: a file with an",
    "image_name column, such as Kaggle's sample_submission_v2.csv, whose order the submission keeps; its images are looked",
    "up in --images (default: test-jpg/ and test-jpg-additional/ beside the CSV). The output is Kaggle's format,",
    '`image_name,tags` with the predicted tags separated by spaces (an image may have none). Images are prepared as in',
    'training (size, resize, preprocessing). A missing or unreadable image stops the command (--on-bad-image error, the',
    "run's data.on_bad_image by default), or with skip is written with no tags and empty probabilities and reported.",
    '--out - writes the submission to stdout (the summary goes to stderr). An existing --out or --probabilities file is',
    'replaced only when its header is the one exp predict writes (or with --force); a device, FIFO or folder never is.',
  ].join('\n'),
  positionals: { name: 'RUN IMAGES', min: 2, max: 2 },
  flags: {
    out: { type: 'string', arg: 'FILE', description: 'Where to write the submission CSV (required); - for stdout.' },
    probabilities: { type: 'string', arg: 'FILE', description: "Also write every tag's probability: image_name,<tag>,... ." },
    tta: TTA_FLAG,
    thresholds: THRESHOLDS_FLAG,
    images: { type: 'string', arg: 'DIR,...', description: "Folders holding a CSV's images, searched in order." },
    ext: { type: 'string', arg: 'EXT', description: "The images' file extension, e.g. .png (default: the run's data.image_ext)." },
    checkpoint: CHECKPOINT_FLAG,
    force: FORCE_OUTPUT_FLAG,
    'on-bad-image': {
      type: 'string',
      arg: 'POLICY',
      choices: ['error', 'skip'],
      description: "What to do with a missing or unreadable image (default: the run's data.on_bad_image).",
    },
    backend: BACKEND_FLAG,
    'runs-dir': RUNS_DIR_FLAG,
  },
  async run(args, flags, io) {
    const cwd = cwdOf(io);
    if (!flags.out)
      throw new UsageError({
        code: 'USAGE',
        message: 'exp predict needs --out FILE for the submission',
        fix: 'e.g. exp predict RUN test-jpg --out submission.csv',
      });
    thresholdsFor(flags.thresholds, []);
    const ext = extOf(flags.ext);
    const { listImages } = await import('../infer/images.js');
    const { dir, ensemble } = modelFolder(args[0]!, io, flags['runs-dir']);
    const { loadPredictor } = await import('../infer/predictor.js');
    const targets = await outputTargets(cwd, flags.out, flags.probabilities, flags.force);
    const model = await loadPredictor(dir, ensemble, flags.backend as BackendChoice, {
      tuned: flags.thresholds === 'tuned',
      ...(flags.checkpoint ? { checkpoint: flags.checkpoint } : {}),
    });
    try {
      const { thresholds } = thresholdsFor(flags.thresholds, model.thresholds);
      const d = model.cfg.data;
      const imageDirs = (flags.images ?? '')
        .split(',')
        .filter(Boolean)
        .map((p) => resolve(cwd, p));
      const list = listImages(resolve(cwd, args[1]!), ext ?? d.image_ext, imageDirs);
      const policy = flags['on-bad-image'] ?? d.on_bad_image;
      const t0 = performance.now();
      const made = await predictAll(model, list, thresholds, { tta: flags.tta, policy, progress: progressLine(io, `predicting ${list.names.length} images`) });
      if (made.bad.length > 0 && policy === 'error') throw badImagesError(made.bad, made.checked, args[1]!);
      writeOutputs(io, targets, made, { seconds: (performance.now() - t0) / 1000, images: list.names.length, model, dir, tta: flags.tta });
      return EXIT.ok;
    } finally {
      model.dispose();
    }
  },
});

/** Where the submission (a file, or stdout for `-`) and the probabilities go. */
interface OutputTargets {
  cwd: string;
  toStdout: boolean;
  out: string;
  probsOut: string | undefined;
}

/** --out and --probabilities, checked before the model loads (a refusal costs nothing), and again by the write itself. */
async function outputTargets(cwd: string, outFlag: string, probsFlag: string | undefined, force: boolean): Promise<OutputTargets> {
  const { SUBMISSION_HEADER } = await import('../infer/submission.js');
  const toStdout = outFlag === '-';
  const out = resolve(cwd, outFlag);
  if (!toStdout) await checkOutputTarget(out, '--out', (p) => firstLine(p) === SUBMISSION_HEADER, force);
  const probsOut = probsFlag ? resolve(cwd, probsFlag) : undefined;
  // Both are written at the end, one after the other: the same file would keep only the probabilities.
  if (probsOut && !toStdout && probsOut === out)
    throw new UsageError({
      code: 'BAD_OPTION_VALUE',
      message: `--out and --probabilities name the same file (${outFlag}): the probabilities would replace the submission`,
      fix: 'give --probabilities a file of its own, e.g. --probabilities probabilities.csv',
    });
  if (probsOut)
    await checkOutputTarget(probsOut, '--probabilities', (p) => /^image_name(,[^,\s]+)+$/.test(firstLine(p)) && firstLine(p) !== SUBMISSION_HEADER, force);
  return { cwd, toStdout, out, probsOut };
}

/** The submission's and the probabilities' lines, the images that could not be read, and how many were looked at. */
interface Predictions {
  sub: string[];
  probLines: string[];
  bad: { name: string; reason: string }[];
  checked: number;
}

/** Scores the images CHUNK at a time; with policy error, stops at the first chunk that has an unreadable image. */
async function predictAll(
  model: Predictor,
  list: ImageList,
  thresholds: readonly number[],
  opts: { tta: boolean; policy: 'error' | 'skip'; progress: (done: number, total: number) => void },
): Promise<Predictions> {
  const { decodeMany } = await import('../data/decode.js');
  const { submissionLine, SUBMISSION_HEADER, probabilitiesHeader, probabilitiesLine } = await import('../infer/submission.js');
  const d = model.cfg.data;
  const n = list.names.length;
  const nTags = model.tags.length;
  const made: Predictions = { sub: [SUBMISSION_HEADER], probLines: [probabilitiesHeader(model.tags)], bad: [], checked: 0 };
  const decode = (from: number): ReturnType<typeof decodeMany> =>
    decodeMany(
      list.files.slice(from, from + CHUNK).map((f) => f || '/nonexistent'),
      d.image_size,
      d.resize,
      undefined,
      d.max_image_bytes,
    );
  // Decoding the next chunk (sharp, on libuv's threads) overlaps scoring this one.
  let next = n > 0 ? decode(0) : undefined;
  for (let from = 0; from < n; from += CHUNK) {
    const { pixels, failures } = await next!;
    next = from + CHUNK < n ? decode(from + CHUNK) : undefined;
    const count = Math.min(CHUNK, n - from);
    made.checked = from + count;
    for (const [i, reason] of failures)
      made.bad.push({ name: list.names[from + i]!, reason: list.files[from + i] ? reason : 'not found in the image folders' });
    if (made.bad.length > 0 && opts.policy === 'error') break;
    const ok = Array.from({ length: count }, (_, i) => i).filter((i) => !failures.has(i));
    const probs = await model.predict(pixels, ok, { tta: opts.tta, onBatch: (done) => opts.progress(from + done + failures.size, n) });
    const row = new Map(ok.map((i, j) => [i, probs.subarray(j * nTags, (j + 1) * nTags)]));
    for (let i = 0; i < count; i++) {
      const p = row.get(i);
      made.sub.push(p ? submissionLine(list.names[from + i]!, p, model.tags, thresholds) : `${list.names[from + i]!},`);
      made.probLines.push(probabilitiesLine(list.names[from + i]!, p ?? null, nTags));
    }
  }
  return made;
}

function badImagesError(bad: Predictions['bad'], checked: number, input: string): DataError {
  const shown = bad
    .slice(0, 10)
    .map((b) => `  ${b.name}: ${b.reason}`)
    .join('\n');
  return new DataError({
    code: 'BAD_IMAGES',
    message: `${bad.length} of the first ${checked} images could not be read (nothing was written):\n${shown}${bad.length > 10 ? `\n  ... and ${bad.length - 10} more` : ''}`,
    fix: 'fix or remove them, or pass --on-bad-image skip to write them with no tags',
    file: input,
  });
}

/** Writes the submission and the probabilities, then says what was skipped and what was written. */
function writeOutputs(
  io: Io,
  t: OutputTargets,
  made: Predictions,
  about: { seconds: number; images: number; model: Predictor; dir: string; tta: boolean },
): void {
  const { bad } = made;
  if (t.toStdout) io.stdout.write(`${made.sub.join('\n')}\n`);
  else writeFileAtomic(t.out, `${made.sub.join('\n')}\n`);
  if (t.probsOut) writeFileAtomic(t.probsOut, `${made.probLines.join('\n')}\n`);
  for (const b of bad.slice(0, 10)) io.stderr.write(`skipped ${b.name}: ${b.reason}\n`);
  if (bad.length > 10) io.stderr.write(`... and ${bad.length - 10} more skipped\n`);
  const { seconds, images: n, model } = about;
  (t.toStdout ? io.stderr : io.stdout).write(
    `wrote ${t.toStdout ? 'the submission to stdout' : displayPath(t.out, t.cwd)}: ${n} images${bad.length ? ` (${bad.length} unreadable, written with no tags)` : ''}, ${model.kind} ${displayPath(about.dir, t.cwd)}, ${about.tta ? '8-way TTA, ' : ''}${model.backend.name}, ${seconds.toFixed(1)} s (${(n / seconds).toFixed(1)} img/s)\n`,
  );
}
