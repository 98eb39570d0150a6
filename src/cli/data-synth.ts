import { existsSync, readdirSync } from 'node:fs';
import { join, resolve } from 'node:path';
import type { Command } from './command.js';
import { EXIT, UsageError } from './io.js';
import { displayPath, table } from './report.js';
import { synthesize } from '../data/synth.js';
import { TAGS } from '../data/tags.js';

/** Integer flag within [min, max], or the default; a bad value is a usage error. */
function intFlag(flags: Record<string, unknown>, name: string, dflt: number, min: number, max: number): number {
  const raw = flags[name];
  if (raw === undefined) return dflt;
  const v = Number(raw);
  if (!Number.isInteger(v) || v < min || v > max) throw new UsageError(`--${name} must be an integer from ${min} to ${max}, got '${String(raw)}'`);
  return v;
}

export const dataSynthCommand: Command = {
  name: 'data synth',
  summary: 'Generate a synthetic Planet-style dataset (train_v2.csv + train-jpg/) that runs anywhere, with no download.',
  usage: 'data synth --out DIR [--count N] [--seed S] [--size PX] [--force]',
  details: [
    'Labels follow the Planet rules (one weather tag per chip, cloudy alone) and roughly the real tag',
    'frequencies, with rare tags boosted to about 4% so small runs can learn them. Each tag paints its own',
    'large, colourful pattern that survives downscaling to 32x32. The same seed gives byte-identical files.',
  ].join('\n'),
  flags: {
    out: { type: 'string', arg: 'DIR', description: 'Folder to write (created if missing).' },
    count: { type: 'string', arg: 'N', description: 'Number of images (default 2000).' },
    seed: { type: 'string', arg: 'S', description: 'Generator seed (default 0).' },
    size: { type: 'string', arg: 'PX', description: 'Side of the square JPEGs (default 256, as Planet).' },
    force: { type: 'boolean', description: 'Write even if DIR already holds a dataset: its train_v2.csv and train-jpg/train_*.jpg are replaced.' },
  },
  async run(positionals, flags, io) {
    if (positionals.length > 0) throw new UsageError(`unexpected argument '${positionals[0]}'; the folder goes in --out DIR`);
    const out = flags.out as string | undefined;
    if (!out) throw new UsageError('give the folder to write with --out DIR');
    const count = intFlag(flags, 'count', 2000, 1, 1_000_000);
    const seed = intFlag(flags, 'seed', 0, 0, Number.MAX_SAFE_INTEGER);
    const size = intFlag(flags, 'size', 256, 32, 512);
    const outDir = resolve(io.cwd ?? process.cwd(), out);
    const shown = displayPath(outDir, io.cwd);
    // Never write over a real dataset by mistake: train_0.jpg is a real Planet file name too.
    const imgDir = join(outDir, 'train-jpg');
    if (!flags.force && (existsSync(join(outDir, 'train_v2.csv')) || (existsSync(imgDir) && readdirSync(imgDir).length > 0))) {
      io.stderr.write(`exp data synth: ${shown} already holds a dataset (train_v2.csv or train-jpg/); choose another --out, or add --force to overwrite it\n`);
      return EXIT.failed;
    }
    const t0 = performance.now();
    let shownAt = 0;
    const progress = io.stderr.isTTY
      ? (done: number, total: number): void => {
        if (done === total || performance.now() - shownAt > 250) { shownAt = performance.now(); io.stderr.write(`\r  ${done}/${total} images`); }
      }
      : undefined;
    const result = await synthesize({ outDir, count, seed, size, overwrite: flags.force === true, ...(progress ? { onProgress: progress } : {}) });
    if (progress) io.stderr.write('\n');
    const seconds = (performance.now() - t0) / 1000;
    io.stdout.write(`Wrote ${result.count} images (${size}x${size} JPEG, seed ${seed}) and train_v2.csv to ${shown} in ${seconds.toFixed(1)} s (${Math.round(result.count / seconds)} img/s)\n\n`);
    const rows = TAGS.map((t) => [t, String(result.tagCounts[t]), `${(100 * (result.tagCounts[t] / result.count)).toFixed(1)}%`]); // as data stats rounds
    io.stdout.write(table(['tag', 'images', 'share'], rows));
    io.stdout.write(`\nCheck it with: exp data stats ${shown}\n`);
    return EXIT.ok;
  },
};
