/**
 * What is in a Planet-format label CSV: tag counts, co-occurrences and the label rules
 * (one weather tag per chip, cloudy alone). The rules are reported, never enforced: the
 * real data breaks them a few times, and the point is to see where.
 */
import { existsSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { MAX_CSV_BYTES, parseLabelCsv, type CsvProblem, type LabelRow } from './csv.js';
import { readFileBounded } from '../util/fsx.js';
import { isTag, isWeatherTag, REAL_IMAGE_COUNT, REAL_TAG_COUNTS, TAGS } from './tags.js';

export interface TagStat {
  tag: string;
  count: number;
  /** count / images. */
  fraction: number;
  /** Share of the real Planet chips with this tag; null for a tag outside the vocabulary. */
  realFraction: number | null;
}

export interface PairStat { tags: [string, string]; count: number; fraction: number }

/** Rows that break one rule: how many, and the first few as examples. */
export interface RuleCheck {
  rule: string;
  count: number;
  examples: { name: string; line: number; tags: string[] }[];
}

export interface DatasetStats {
  csv: string;
  images: number;
  /** Every vocabulary tag (count 0 included), then unknown tags; most frequent first. */
  tags: TagStat[];
  /** Most frequent tag pairs, most frequent first. */
  pairs: PairStat[];
  checks: RuleCheck[];
  /** CSV problems from the parser (duplicate names, extra columns, ...). */
  problems: CsvProblem[];
  /** Rows whose image file is missing; null when the image folder does not exist. */
  missingImages: RuleCheck | null;
}

const EXAMPLES = 5;

function check(rule: string, rows: readonly LabelRow[], broken: (r: LabelRow) => boolean): RuleCheck {
  const bad = rows.filter(broken);
  return { rule, count: bad.length, examples: bad.slice(0, EXAMPLES).map(({ name, line, tags }) => ({ name, line, tags })) };
}

/** Statistics of parsed rows (pure). `topPairs` bounds the pair list. */
export function labelStats(rows: readonly LabelRow[], csv: string, problems: CsvProblem[] = [], topPairs = 10): DatasetStats {
  const n = rows.length;
  const counts = new Map<string, number>(TAGS.map((t) => [t, 0]));
  const pairs = new Map<string, number>();
  for (const { tags } of rows) {
    const sorted = [...tags].sort();
    for (const t of sorted) counts.set(t, (counts.get(t) ?? 0) + 1);
    for (let i = 0; i < sorted.length; i++) for (let j = i + 1; j < sorted.length; j++) {
      const k = `${sorted[i]} ${sorted[j]}`;
      pairs.set(k, (pairs.get(k) ?? 0) + 1);
    }
  }
  const frac = (c: number): number => (n === 0 ? 0 : c / n);
  return {
    csv,
    images: n,
    tags: [...counts].map(([tag, count]) => ({ tag, count, fraction: frac(count), realFraction: isTag(tag) ? REAL_TAG_COUNTS[tag] / REAL_IMAGE_COUNT : null }))
      .sort((a, b) => b.count - a.count || a.tag.localeCompare(b.tag)),
    pairs: [...pairs].sort((a, b) => b[1] - a[1] || a[0].localeCompare(b[0])).slice(0, topPairs)
      .map(([k, count]) => ({ tags: k.split(' ') as [string, string], count, fraction: frac(count) })),
    checks: [
      check('exactly one weather tag (clear, cloudy, haze, partly_cloudy)', rows, (r) => r.tags.filter(isWeatherTag).length !== 1),
      check('cloudy has no other tag', rows, (r) => r.tags.includes('cloudy') && r.tags.length > 1),
      check('tags are in the vocabulary', rows, (r) => r.tags.some((t) => !isTag(t))),
      check('at least one tag', rows, (r) => r.tags.length === 0),
    ],
    problems,
    missingImages: null,
  };
}

export interface StatsOptions {
  /** Label CSV, relative to the dataset folder. */
  csv?: string;
  /** Image folder, relative to the dataset folder. */
  images?: string;
  imageExt?: string;
  topPairs?: number;
}

/**
 * Reads `dir/train_v2.csv` (and lists `dir/train-jpg/` to find rows without an image).
 * Throws an Error with the path when the CSV cannot be read; CSV content problems,
 * including missing columns, come back in `problems`.
 */
export function datasetStats(dir: string, opts: StatsOptions = {}): DatasetStats {
  const csv = join(dir, opts.csv ?? 'train_v2.csv');
  const parsed = parseLabelCsv(readFileBounded(csv, MAX_CSV_BYTES, 'label CSV').toString('utf8'), csv);
  const stats = labelStats(parsed.rows, csv, parsed.problems, opts.topPairs);
  const imageDir = join(dir, opts.images ?? 'train-jpg');
  if (existsSync(imageDir)) {
    const present = new Set(readdirSync(imageDir));
    const ext = opts.imageExt ?? '.jpg';
    stats.missingImages = check(`image file in ${opts.images ?? 'train-jpg'}/`, parsed.rows, (r) => !present.has(r.name + ext));
  }
  return stats;
}
