/**
 * Loads a Planet-format dataset (label CSV + image folder) into memory as packed uint8
 * pixels and one-hot targets, through the decoded cache. Nothing is dropped silently:
 * bad images follow `data.on_bad_image`, and duplicate rows, files not in the CSV and
 * tolerated CSV oddities are all listed in the returned report.
 */
import { readdirSync, statSync, existsSync } from 'node:fs';
import { createHash } from 'node:crypto';
import { isAbsolute, join, relative, resolve, sep } from 'node:path';
import type { RunConfig } from '../config/normalise.js';
import { MAX_CSV_BYTES, parseLabelCsv, type CsvProblem } from './csv.js';
import { TAGS } from './tags.js';
import { readFileBounded } from '../util/fsx.js';
import { decodeMany } from './decode.js';
import { DataError } from '../errors.js';
import { readCache, writeCache, cachePath, defaultCacheDir } from './cache.js';

export type DataConfig = RunConfig['data'];

export { DataError, type DataErrorCode } from '../errors.js';

export interface BadImage { name: string; file: string; line: number; reason: string }

export interface DataReport {
  csv: string;
  rows: number;
  included: number;
  skipped: BadImage[];
  /** Image files present in the folder but not named in the CSV. */
  unlisted: string[];
  /** Tolerated CSV problems (duplicates, extra columns, ...). */
  warnings: CsvProblem[];
  cache: { path: string; hit: boolean; decodeSeconds: number; imagesPerSecond: number | null };
}

export interface Dataset {
  /** Image names of the included rows, in CSV order. */
  names: string[];
  /** Tag vocabulary, sorted. */
  tags: string[];
  /** One-hot targets, [N, T] row-major. */
  targets: Uint8Array;
  /** Pixels, [N, S, S, 3] RGB uint8 row-major. Converted to float per batch, never as a whole. */
  pixels: Buffer;
  size: number;
  fingerprint: string;
  report: DataReport;
}

const FIRST = 10;
const list = <T>(items: readonly T[], show: (t: T) => string): string =>
  items.slice(0, FIRST).map((t) => `  ${show(t)}`).join('\n') + (items.length > FIRST ? `\n  ... and ${items.length - FIRST} more` : '');

export interface LoadOptions {
  cacheDir?: string;
  onProgress?: (message: string) => void;
}

/**
 * `rel` (data.csv, data.images) inside `root` (data.path): a relative path may not climb out
 * of the data folder (`../../etc/shadow`); an absolute one is taken as the user wrote it.
 */
export function insideData(root: string, rel: string, what: string): string {
  if (isAbsolute(rel)) return rel;
  const abs = resolve(root, rel);
  const back = relative(root, abs);
  if (back === '..' || back.startsWith(`..${sep}`)) {
    throw new DataError({ code: 'DATA_OUTSIDE_FOLDER', message: `${what} '${rel}' points outside data.path (${root})`, fix: `give ${what} relative to data.path and inside it, or as an absolute path` });
  }
  return abs;
}

/** Tags become metric names (val_fbeta.<tag>) and MLflow keys: letters, digits, '_', '-', '.' only. */
const TAG_FORM = /^[A-Za-z0-9_.-]+$/;

/** The label CSV's rows to load (bad tags and duplicates left out, data.limit applied) and the tag vocabulary. */
interface Labels {
  text: string;
  parsed: ReturnType<typeof parseLabelCsv>;
  fatal: CsvProblem[];
  rows: ReturnType<typeof parseLabelCsv>['rows'];
  tags: string[];
  tagSkipped: BadImage[];
}

/** Reads and checks the label CSV: fatal problems, and tags outside the vocabulary (data.on_bad_image), are errors. */
function readLabels(cfg: DataConfig, csvPath: string): Labels {
  const text = readFileBounded(csvPath, MAX_CSV_BYTES, 'label CSV').toString('utf8');
  const parsed = parseLabelCsv(text, csvPath);
  const fatal = parsed.problems.filter((p) => p.severity === 'error' && p.code !== 'DUPLICATE_NAME');
  if (fatal.length > 0) {
    throw new DataError({ code: 'CSV_INVALID', message: `${fatal.length} problem${fatal.length === 1 ? '' : 's'} in ${csvPath}:\n${list(fatal, (p) => `${p.file}:${p.line}  ${p.message} [${p.code}]`)}`, exit: 'failed' });
  }
  // Tags outside the vocabulary (Planet's 17, or data.tags), or that cannot be a metric name,
  // are bad input: they would silently become classes. They follow data.on_bad_image.
  const vocabulary = new Set<string>(cfg.tags ?? TAGS);
  const badTag = (t: string): boolean => !vocabulary.has(t) || !TAG_FORM.test(t);
  const tagRows = parsed.rows.filter((r) => r.tags.some(badTag));
  if (tagRows.length > 0 && cfg.on_bad_image === 'error') {
    throw new DataError({ code: 'UNKNOWN_TAGS', message: `${tagRows.length} row${tagRows.length === 1 ? '' : 's'} of ${csvPath} ha${tagRows.length === 1 ? 's' : 've'} tags outside the vocabulary (${cfg.tags ? 'data.tags' : "Planet's 17 tags"}):\n${list(tagRows, (r) => `${csvPath}:${r.line}  ${r.name}: ${r.tags.filter(badTag).map((t) => `'${t}'`).join(', ')}`)}`, fix: 'fix the labels, list your own tags in data.tags, or set data.on_bad_image: skip to leave those rows out (they will be listed)', exit: 'failed' });
  }
  const tagSkipped: BadImage[] = tagRows.map((r) => ({ name: r.name, file: csvPath, line: r.line, reason: `tags outside the vocabulary: ${r.tags.filter(badTag).join(', ')}` }));
  const usable = tagRows.length > 0 ? parsed.rows.filter((r) => !r.tags.some(badTag)) : parsed.rows;
  // Duplicates keep their first row (the parser reports the rest).
  const seen = new Set<string>();
  let rows = usable.filter((r) => (seen.has(r.name) ? false : (seen.add(r.name), true)));
  if (cfg.limit !== null) rows = rows.slice(0, cfg.limit);
  if (rows.length === 0) throw new DataError({ code: 'EMPTY_DATASET', message: `${csvPath} has no usable image rows`, exit: 'failed' });
  // The vocabulary comes from every row of the CSV, so data.limit never shrinks the outputs.
  const tags = [...new Set(usable.flatMap((r) => r.tags))].sort();
  return { text, parsed, fatal, rows, tags, tagSkipped };
}

/**
 * The dataset's fingerprint: the CSV bytes and every listed file's size and mtime, so a changed
 * or added image (or label) gives a new cache entry.
 */
function fingerprintOf(text: string, cfg: DataConfig, files: readonly string[]): string {
  const h = createHash('sha256').update(text).update(`\0${cfg.image_ext}\0${cfg.limit}\0`);
  for (const f of files) {
    try { const s = statSync(f); h.update(`${f}\0${s.size}\0${s.mtimeMs}\n`); } catch { h.update(`${f}\0missing\n`); }
  }
  return h.digest('hex').slice(0, 20);
}

/** The decoded pixels (and the images that failed) from the cache at `path`, or decoded now and cached. */
async function decodeCached(path: string, files: readonly string[], cfg: DataConfig, opts: LoadOptions): Promise<{ pixels: Buffer; failures: Map<number, string>; hit: boolean; decodeSeconds: number }> {
  const cached = readCache(path, files.length, cfg.image_size);
  if (cached) return { ...cached, hit: true, decodeSeconds: 0 };
  const t0 = performance.now();
  opts.onProgress?.(`decoding ${files.length} images at ${cfg.image_size}x${cfg.image_size} (${cfg.resize}) ...`);
  const { pixels, failures } = await decodeMany(files, cfg.image_size, cfg.resize, undefined, cfg.max_image_bytes);
  const decodeSeconds = (performance.now() - t0) / 1000;
  return { pixels, failures, hit: false, decodeSeconds };
}

/** Loads (or reads from cache) the dataset described by `cfg`. */
export async function loadDataset(cfg: DataConfig, opts: LoadOptions = {}): Promise<Dataset> {
  const csvPath = insideData(cfg.path, cfg.csv, 'data.csv');
  const imageDir = insideData(cfg.path, cfg.images, 'data.images');
  if (!existsSync(csvPath)) throw new DataError({ code: 'CSV_NOT_FOUND', message: `label CSV not found: ${csvPath}`, fix: `fix data.path / data.csv, or generate a synthetic dataset with: exp data synth --out ${cfg.path}`, exit: 'failed' });
  if (!existsSync(imageDir)) throw new DataError({ code: 'IMAGE_DIR_NOT_FOUND', message: `image folder not found: ${imageDir}`, fix: 'fix data.images (relative to data.path)', exit: 'failed' });
  const { text, parsed, fatal, rows, tags, tagSkipped } = readLabels(cfg, csvPath);

  const files = rows.map((r) => join(imageDir, r.name + cfg.image_ext));
  const present = new Set(readdirSync(imageDir));
  const listed = new Set(parsed.rows.map((r) => r.name + cfg.image_ext));
  const unlisted = [...present].filter((f) => !listed.has(f) && !f.startsWith('.')).sort();

  const fingerprint = fingerprintOf(text, cfg, files);
  const cacheDir = opts.cacheDir ?? defaultCacheDir();
  const path = cachePath(cacheDir, fingerprint, cfg.image_size, cfg.resize);
  const { pixels, failures, hit, decodeSeconds } = await decodeCached(path, files, cfg, opts);
  if (!hit) writeCache(path, pixels, failures, rows.map((r) => r.name));

  const bad: BadImage[] = [...failures].sort((a, b) => a[0] - b[0]).map(([i, reason]) => ({ name: rows[i]!.name, file: files[i]!, line: rows[i]!.line, reason }));
  if (bad.length > 0 && cfg.on_bad_image === 'error') {
    throw new DataError({ code: 'BAD_IMAGES', message: `${bad.length} of ${rows.length} images could not be used:\n${list(bad, (b) => `${b.file} (${csvPath}:${b.line}): ${b.reason}`)}`, fix: 'fix or remove them, or set data.on_bad_image: skip to leave them out (they will be listed)', exit: 'failed' });
  }
  const keep = rows.map((_, i) => i).filter((i) => !failures.has(i));
  if (keep.length === 0) throw new DataError({ code: 'EMPTY_DATASET', message: `no usable images in ${imageDir}`, exit: 'failed' });
  const frame = cfg.image_size * cfg.image_size * 3;
  // Compact in place only when something was skipped, to avoid a second 2 GB buffer.
  if (keep.length !== rows.length) keep.forEach((src, dst) => { if (src !== dst) pixels.copy(pixels, dst * frame, src * frame, (src + 1) * frame); });
  const tagIndex = new Map(tags.map((t, i) => [t, i]));
  const targets = new Uint8Array(keep.length * tags.length);
  keep.forEach((src, dst) => { for (const t of rows[src]!.tags) targets[dst * tags.length + tagIndex.get(t)!] = 1; });

  return {
    names: keep.map((i) => rows[i]!.name),
    tags,
    targets,
    pixels: pixels.subarray(0, keep.length * frame),
    size: cfg.image_size,
    fingerprint,
    report: {
      csv: csvPath,
      rows: rows.length,
      included: keep.length,
      skipped: [...tagSkipped, ...bad],
      unlisted,
      warnings: parsed.problems.filter((p) => !fatal.includes(p)),
      cache: { path, hit, decodeSeconds, imagesPerSecond: hit || decodeSeconds === 0 ? null : rows.length / decodeSeconds },
    },
  };
}

/** Human-readable lines for a report (printed by `exp train`). */
export function describeReport(r: DataReport): string[] {
  const lines = [`data: ${r.included} of ${r.rows} images from ${r.csv} (cache ${r.cache.hit ? 'hit' : `miss: decoded in ${r.cache.decodeSeconds.toFixed(1)} s, ${Math.round(r.cache.imagesPerSecond ?? 0)} img/s`})`];
  if (r.skipped.length) lines.push(`skipped ${r.skipped.length} bad image${r.skipped.length === 1 ? '' : 's'} (data.on_bad_image: skip):\n${list(r.skipped, (b) => `${b.file}: ${b.reason}`)}`);
  if (r.unlisted.length) lines.push(`${r.unlisted.length} file${r.unlisted.length === 1 ? ' is' : 's are'} in the image folder but not in the CSV (ignored):\n${list(r.unlisted, (f) => f)}`);
  for (const w of r.warnings) lines.push(`${w.file}:${w.line}: ${w.message} [${w.code}]`);
  return lines;
}
