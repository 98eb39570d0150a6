import { resolve } from 'node:path';
import { defineCommand } from './command.js';
import { EXIT } from './io.js';
import { JSON_FLAG } from './flags.js';
import { displayPath, table } from './report.js';
import { datasetStats, type DatasetStats, type RuleCheck } from '../data/stats.js';

const pct = (f: number): string => `${(100 * f).toFixed(1)}%`;

function render(s: DatasetStats, cwd: string | undefined): string {
  const out: string[] = [`${displayPath(s.csv, cwd)}: ${s.images} image${s.images === 1 ? '' : 's'}\n\n`];
  out.push(
    table(
      ['tag', 'images', 'share', 'real share'],
      s.tags.map((t) => [t.tag, String(t.count), pct(t.fraction), t.realFraction === null ? 'unknown tag' : pct(t.realFraction)]),
    ),
  );
  out.push('\nMost common pairs\n');
  out.push(
    table(
      ['pair', 'images', 'share'],
      s.pairs.map((p) => [p.tags.join(' + '), String(p.count), pct(p.fraction)]),
    ),
  );
  out.push('\nRule checks\n');
  const checks: RuleCheck[] = [...s.checks, ...(s.missingImages ? [s.missingImages] : [])];
  out.push(
    table(
      ['rule', 'broken by', 'first examples'],
      checks.map((c) => [c.rule, String(c.count), c.examples.map((e) => `${e.name} (line ${e.line}: ${e.tags.join(' ') || 'no tags'})`).join(', ')]),
    ),
  );
  if (!s.missingImages) out.push('(image folder not found, so image files were not checked)\n');
  if (s.problems.length > 0) {
    out.push(`\n${s.problems.length} CSV problem${s.problems.length === 1 ? '' : 's'}\n`);
    for (const p of s.problems.slice(0, 20)) out.push(`${displayPath(p.file, cwd)}:${p.line}  ${p.severity}: ${p.message} [${p.code}]\n`);
    if (s.problems.length > 20) out.push(`... and ${s.problems.length - 20} more (--json lists all)\n`);
  }
  return out.join('');
}

export const dataStatsCommand = defineCommand({
  name: 'data stats',
  summary: 'Summarise a Planet-format dataset: tag counts, common tag pairs, and rows that break the label rules.',
  usage: 'data stats DIR [--json] [--csv FILE] [--images DIR] [--top N]',
  details: [
    'Rules checked: exactly one weather tag per image, cloudy alone, tags in the 17-tag vocabulary, at least one',
    'tag, and an image file for every row. Broken rules are reported, not fatal (the real data has a few).',
    'Exit status: 0 when the CSV could be read, 2 when it is missing or lacks the image_name/tags columns.',
  ].join('\n'),
  positionals: { name: 'DIR', min: 1, max: 1 },
  flags: {
    json: JSON_FLAG,
    csv: { type: 'string', arg: 'FILE', default: 'train_v2.csv', description: 'Label CSV relative to DIR.' },
    images: { type: 'string', arg: 'DIR', default: 'train-jpg', description: 'Image folder relative to DIR.' },
    top: { type: 'int', arg: 'N', default: 10, min: 0, max: 1000, description: 'Number of tag pairs to list.' },
  },
  async run(positionals, flags, io) {
    const top = flags.top;
    const dir = resolve(io.cwd ?? process.cwd(), positionals[0]!);
    let stats: DatasetStats;
    try {
      stats = datasetStats(dir, { topPairs: top, csv: flags.csv, images: flags.images });
    } catch (e) {
      const err = e as NodeJS.ErrnoException;
      if (!['ENOENT', 'ENOTDIR', 'EISDIR', 'EACCES'].includes(err.code ?? '')) throw e;
      io.stderr.write(
        `exp data stats: cannot read ${displayPath(err.path ?? dir, io.cwd)} (${err.code}); DIR must hold ${flags.csv} (generate one with: exp data synth --out DIR)\n`,
      );
      return EXIT.invalid;
    }
    const missing = stats.problems.find((p) => p.code === 'MISSING_COLUMN' || p.code === 'EMPTY_FILE');
    if (flags.json) io.stdout.write(JSON.stringify(stats, null, 2) + '\n');
    else if (missing) io.stderr.write(`${displayPath(missing.file, io.cwd)}:${missing.line}  ${missing.message} [${missing.code}]\n`);
    else io.stdout.write(render(stats, io.cwd));
    return missing ? EXIT.invalid : EXIT.ok;
  },
});
