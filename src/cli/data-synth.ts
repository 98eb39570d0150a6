import { existsSync, readdirSync, statSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { defineCommand } from './command.js';
import { EXIT } from './io.js';
import { UsageError } from '../errors.js';
import { displayPath, table } from './report.js';
import { synthesize } from '../data/synth.js';
import { TAGS } from '../data/tags.js';

export const dataSynthCommand = defineCommand({
  name: 'data synth',
  summary: 'Generate a synthetic Planet-style dataset (train_v2.csv + train-jpg/) that runs anywhere, with no download.',
  usage: 'data synth --out DIR [--count N] [--seed S] [--size PX] [--force]',
  details: [
    'Labels follow the Planet rules (one weather tag per chip, cloudy alone) and roughly the real tag',
    'frequencies, with rare tags boosted to about 4% so small runs can learn them. Each tag paints its own',
    'large, colourful pattern that survives downscaling to 32x32. The same seed gives byte-identical files.',
  ].join('\n'),
  positionals: { name: 'argument', max: 0 },
  flags: {
    out: { type: 'string', arg: 'DIR', description: 'Folder to write (created if missing).' },
    count: { type: 'int', arg: 'N', default: 2000, min: 1, max: 1_000_000, description: 'Number of images.' },
    seed: { type: 'int', arg: 'S', default: 0, min: 0, max: Number.MAX_SAFE_INTEGER, description: 'Generator seed.' },
    size: { type: 'int', arg: 'PX', default: 256, min: 32, max: 512, description: 'Side of the square JPEGs (256, as Planet).' },
    force: { type: 'boolean', description: 'Write even if DIR already holds a dataset: its train_v2.csv and train-jpg/train_*.jpg are replaced.' },
  },
  async run(_args, flags, io) {
    const { out, count, seed, size } = flags;
    if (!out) throw new UsageError({ code: 'USAGE', message: 'give the folder to write with --out DIR' });
    const outDir = resolve(io.cwd ?? process.cwd(), out);
    const shown = displayPath(outDir, io.cwd);
    // Never write over a real dataset by mistake: train_0.jpg is a real Planet file name too.
    const imgDir = join(outDir, 'train-jpg');
    if (existsSync(outDir) && !statSync(outDir).isDirectory())
      throw new UsageError({
        code: 'BAD_OPTION_VALUE',
        message: `--out ${shown} is a file, not a folder`,
        fix: 'give a folder to write the dataset into (it is created if missing)',
      });
    // A train-jpg that is not a folder is left to synthesize, which refuses it (coded) even under --force.
    const holdsImages = existsSync(imgDir) && statSync(imgDir).isDirectory() && readdirSync(imgDir).length > 0;
    if (!flags.force && (existsSync(join(outDir, 'train_v2.csv')) || holdsImages)) {
      throw new UsageError({
        code: 'BAD_OPTION_VALUE',
        message: `${shown} already holds a dataset (train_v2.csv or train-jpg/)`,
        fix: 'choose another --out, or add --force to overwrite it',
      });
    }
    const t0 = performance.now();
    let shownAt = 0;
    const progress = io.stderr.isTTY
      ? (done: number, total: number): void => {
          if (done === total || performance.now() - shownAt > 250) {
            shownAt = performance.now();
            io.stderr.write(`\r  ${done}/${total} images`);
          }
        }
      : undefined;
    const result = await synthesize({ outDir, count, seed, size, overwrite: flags.force, ...(progress ? { onProgress: progress } : {}) });
    if (progress) io.stderr.write('\n');
    const seconds = (performance.now() - t0) / 1000;
    io.stdout.write(
      `Wrote ${result.count} images (${size}x${size} JPEG, seed ${seed}) and train_v2.csv to ${shown} in ${seconds.toFixed(1)} s (${Math.round(result.count / seconds)} img/s)\n\n`,
    );
    const rows = TAGS.map((t) => [t, String(result.tagCounts[t]), `${(100 * (result.tagCounts[t] / result.count)).toFixed(1)}%`]); // as data stats rounds
    io.stdout.write(table(['tag', 'images', 'share'], rows));
    io.stdout.write(`\nCheck it with: exp data stats ${shown}\n`);
    return EXIT.ok;
  },
});
