import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, readdirSync, writeFileSync, mkdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import sharp from 'sharp';
import { DataError } from '../../src/errors.js';
import { synthesize, synthLabels } from '../../src/data/synth.js';
import { parseLabelCsv } from '../../src/data/csv.js';
import { datasetStats } from '../../src/data/stats.js';
import { REAL_TAG_COUNTS, TAGS, WEATHER_TAGS, isWeatherTag, type Tag } from '../../src/data/tags.js';
import { dataSynthCommand } from '../../src/cli/data-synth.js';
import { dataStatsCommand } from '../../src/cli/data-stats.js';
import { expIn, tempDir as makeTempDir } from '../helpers/cli.js';

const made: string[] = [];
const tempDir = (prefix: string): string => { const d = makeTempDir(prefix); made.push(d); return d; };
after(() => { for (const d of made) rmSync(d, { recursive: true, force: true }); });

const share = (labels: readonly Tag[][], t: Tag): number => labels.filter((l) => l.includes(t)).length / labels.length;

test('tag vocabulary: 17 tags sorted, 4 weather tags, a real count for each', () => {
  assert.equal(TAGS.length, 17);
  assert.deepEqual([...TAGS], [...TAGS].sort());
  assert.deepEqual([...WEATHER_TAGS].sort(), ['clear', 'cloudy', 'haze', 'partly_cloudy']);
  assert.deepEqual(Object.keys(REAL_TAG_COUNTS).sort(), [...TAGS]);
});

test('synthetic labels follow the Planet rules, cover every tag and keep the real order of common tags', () => {
  const labels = synthLabels(20_000, 0);
  for (const [i, tags] of labels.entries()) {
    assert.equal(tags.filter(isWeatherTag).length, 1, `train_${i}: ${tags.join(' ')}`);
    if (tags.includes('cloudy')) assert.deepEqual(tags, ['cloudy'], `train_${i}`);
    assert.deepEqual(tags, [...tags].sort(), `train_${i} tags sorted`);
  }
  for (const t of TAGS) assert.ok(share(labels, t) >= 0.035, `${t} on ${(100 * share(labels, t)).toFixed(1)}% of chips`);
  // Common tags (>= 2,000 real chips) keep their real order wherever the real counts differ by 25% or more.
  const common = TAGS.filter((t) => REAL_TAG_COUNTS[t] >= 2000);
  for (const a of common) for (const b of common) {
    if (REAL_TAG_COUNTS[a] >= 1.25 * REAL_TAG_COUNTS[b]) assert.ok(share(labels, a) > share(labels, b), `${a} should be more common than ${b}`);
  }
  // Rare tags are boosted but stay rarer than the common ones.
  assert.ok(share(labels, 'conventional_mine') < share(labels, 'cloudy'));
  // Co-occurrences: farmland brings cultivation and roads, roads bring habitation, mines bring bare ground.
  const given = (t: Tag, c: Tag, present: boolean): number => share(labels.filter((l) => l.includes(c) === present), t);
  assert.ok(given('cultivation', 'agriculture', true) > 3 * given('cultivation', 'agriculture', false));
  assert.ok(given('road', 'agriculture', true) > 2 * given('road', 'agriculture', false));
  assert.ok(given('habitation', 'road', true) > 3 * given('habitation', 'road', false));
  assert.ok(given('bare_ground', 'artisinal_mine', true) > 5 * given('bare_ground', 'artisinal_mine', false));
  assert.ok(given('primary', 'selective_logging', true) === 1);
});

// One real dataset, shared by the tests below: 256x256 like Planet, enough images for the
// per-tag statistics (each tag is on ~4% of chips, so ~16+ chips each).
const COUNT = 400;
const dataset = (async () => {
  const dir = tempDir('exp-synth-');
  const result = await synthesize({ outDir: dir, count: COUNT, seed: 0, size: 256 });
  return { dir, result };
})();

test('synthesize writes a Planet-format folder whose CSV passes every rule check', async () => {
  const { dir, result } = await dataset;
  assert.equal(result.count, COUNT);
  assert.equal(result.files.length, COUNT + 2);
  assert.deepEqual(result.files.slice(0, 3), [join(dir, 'train_v2.csv'), join(dir, 'synth.json'), join(dir, 'train-jpg', 'train_0.jpg')]);
  const text = readFileSync(join(dir, 'train_v2.csv'), 'utf8');
  assert.match(text, /^image_name,tags\ntrain_0,/);
  const { rows, problems } = parseLabelCsv(text, 'train_v2.csv');
  assert.deepEqual(problems, []);
  assert.deepEqual(rows.map((r) => r.name), Array.from({ length: COUNT }, (_, i) => `train_${i}`));
  // The CSV holds exactly the labels synthLabels predicts (labels do not depend on rendering).
  assert.deepEqual(rows.map((r) => r.tags), synthLabels(COUNT, 0));
  assert.equal(readdirSync(join(dir, 'train-jpg')).length, COUNT);
  const stats = datasetStats(dir);
  assert.equal(stats.images, COUNT);
  for (const c of [...stats.checks, stats.missingImages!]) assert.equal(c.count, 0, c.rule);
  for (const t of TAGS) assert.equal(stats.tags.find((s) => s.tag === t)!.count, result.tagCounts[t], t);
});

test('the JPEGs decode to size x size x 3', async () => {
  const { dir } = await dataset;
  for (const i of [0, 1, 57, COUNT - 1]) {
    const { data, info } = await sharp(join(dir, 'train-jpg', `train_${i}.jpg`)).raw().toBuffer({ resolveWithObject: true });
    assert.deepEqual([info.width, info.height, info.channels], [256, 256, 3]);
    assert.equal(data.length, 256 * 256 * 3);
  }
});

test('every tag leaves a signature (a colour, or pale lines for road) that survives downscaling to 32x32', async () => {
  const { dir } = await dataset;
  const rows = parseLabelCsv(readFileSync(join(dir, 'train_v2.csv'), 'utf8'), 'csv').rows;
  // The quickstart's path: JPEG -> 32x32 with libvips's linear kernel.
  const small = await Promise.all(rows.map((r) => sharp(join(dir, 'train-jpg', `${r.name}.jpg`)).resize(32, 32, { kernel: 'linear', fit: 'fill' }).raw().toBuffer()));
  type Px = (r: number, g: number, b: number) => boolean;
  const near = (cols: [number, number, number][], d: number): Px => (r, g, b) => cols.some(([R, G, B]) => (r - R) ** 2 + (g - G) ** 2 + (b - B) ** 2 < d * d);
  const chroma = (r: number, g: number, b: number): number => Math.max(r, g, b) - Math.min(r, g, b);
  const white: Px = (r, g, b) => Math.min(r, g, b) > 215 && chroma(r, g, b) < 30;
  // Per image: the fraction of its pixels that look like the tag (or, for weather, a whole-image measure).
  const fraction = (f: Px) => (px: Buffer): number => { let n = 0; for (let i = 0; i < px.length; i += 3) if (f(px[i]!, px[i + 1]!, px[i + 2]!)) n++; return n / (px.length / 3); };
  // Pixels brighter than both neighbours across (a line 1-2 px wide) and not strongly coloured.
  const ridges = (px: Buffer): number => {
    const lum = (x: number, y: number): number => { const i = (Math.min(31, Math.max(0, y)) * 32 + Math.min(31, Math.max(0, x))) * 3; return px[i]! + px[i + 1]! + px[i + 2]!; };
    let n = 0;
    for (let y = 0; y < 32; y++) for (let x = 0; x < 32; x++) {
      const l = lum(x, y), i = (y * 32 + x) * 3;
      if (chroma(px[i]!, px[i + 1]!, px[i + 2]!) > 70) continue;
      if ((l - lum(x - 1, y) > 45 && l - lum(x + 1, y) > 45) || (l - lum(x, y - 1) > 45 && l - lum(x, y + 1) > 45)) n++;
    }
    return n / 1024;
  };
  const stat: Record<Tag, (px: Buffer) => number> = {
    agriculture: fraction(near([[205, 200, 110], [214, 188, 124], [176, 204, 96]], 40)),
    artisinal_mine: fraction(near([[230, 138, 40], [60, 206, 196]], 50)),
    bare_ground: fraction(near([[158, 96, 56]], 35)),
    blooming: fraction(near([[232, 108, 208], [172, 92, 226]], 60)),
    blow_down: fraction(near([[150, 228, 150]], 45)),
    conventional_mine: fraction(near([[148, 148, 154], [196, 196, 202]], 25)),
    cultivation: fraction(near([[196, 160, 116]], 30)),
    habitation: fraction((r, g, b) => r - g > 40 && r - b > 40 && r > 120 && r < 235 && g < 150), // red roofs
    primary: fraction(near([[34, 88, 42]], 40)),
    road: ridges, // thin pale lines
    selective_logging: fraction(near([[104, 56, 32]], 40)),
    slash_burn: fraction((r, g, b) => Math.max(r, g, b) < 60),
    water: fraction(near([[28, 68, 142]], 50)),
    clear: (px) => { let s = 0; for (let i = 0; i < px.length; i += 3) s += chroma(px[i]!, px[i + 1]!, px[i + 2]!); return s / (px.length / 3); },
    haze: fraction((r, g, b) => chroma(r, g, b) < 40 && Math.max(r, g, b) > 100 && Math.max(r, g, b) < 210),
    partly_cloudy: (px) => { const w = fraction(white)(px); return w > 0.02 && w < 0.7 ? 1 : 0; },
    cloudy: fraction(white),
  };
  const mean = (a: number[]): number => a.reduce((x, y) => x + y, 0) / a.length;
  const variance = (a: number[]): number => { const m = mean(a); return a.reduce((x, y) => x + (y - m) ** 2, 0) / (a.length - 1); };
  const weak: string[] = [];
  for (const t of TAGS) {
    const s = small.map(stat[t]);
    const withTag = s.filter((_, i) => rows[i]!.tags.includes(t)), without = s.filter((_, i) => !rows[i]!.tags.includes(t));
    assert.ok(withTag.length >= 8, `${t}: only ${withTag.length} images`);
    // Effect size (Cohen's d): at 0.8 and above the difference is plain to see per image, not just on average.
    const d = (mean(withTag) - mean(without)) / Math.sqrt((variance(withTag) + variance(without)) / 2);
    if (!(d >= 0.8)) weak.push(`${t} (d=${d.toFixed(2)}, with ${mean(withTag).toFixed(3)}, without ${mean(without).toFixed(3)})`);
  }
  assert.deepEqual(weak, [], `tags whose signature does not survive at 32x32: ${weak.join('; ')}`);
});

test('same seed, same bytes; another seed, other bytes; concurrency does not matter', async () => {
  const files = (dir: string): Map<string, Buffer> => new Map([
    ['train_v2.csv', readFileSync(join(dir, 'train_v2.csv'))],
    ...readdirSync(join(dir, 'train-jpg')).map((f) => [f, readFileSync(join(dir, 'train-jpg', f))] as [string, Buffer]),
  ]);
  const run = async (seed: number, concurrency: number): Promise<Map<string, Buffer>> => {
    const dir = tempDir('exp-synth-det-');
    await synthesize({ outDir: dir, count: 24, seed, size: 64, concurrency });
    return files(dir);
  };
  const a = await run(7, 8), b = await run(7, 1), c = await run(8, 8);
  assert.equal(a.size, 25);
  for (const [name, bytes] of a) assert.ok(bytes.equals(b.get(name)!), `${name} differs between two runs with seed 7`);
  const same = [...a].filter(([name, bytes]) => name.endsWith('.jpg') && bytes.equals(c.get(name)!));
  assert.deepEqual(same.map(([n]) => n), [], 'seed 8 should give other images');
});

test('a smaller dataset is a prefix of a larger one with the same seed, and replaces it in place', async () => {
  const { dir } = await dataset;
  const small = tempDir('exp-synth-prefix-');
  await synthesize({ outDir: small, count: 8, seed: 0, size: 256 });
  await synthesize({ outDir: small, count: 5, seed: 0, size: 256 });
  assert.deepEqual(readdirSync(join(small, 'train-jpg')).sort(), ['train_0.jpg', 'train_1.jpg', 'train_2.jpg', 'train_3.jpg', 'train_4.jpg']);
  for (let i = 0; i < 5; i++) {
    assert.ok(readFileSync(join(small, 'train-jpg', `train_${i}.jpg`)).equals(readFileSync(join(dir, 'train-jpg', `train_${i}.jpg`))), `train_${i}`);
  }
  assert.deepEqual(JSON.parse(readFileSync(join(small, 'synth.json'), 'utf8')), { generator: 'exp data synth', count: 5, seed: 0, size: 256, quality: 90 });
});

test('synthesize never writes over images it did not generate, unless told to', async () => {
  const real = tempDir('exp-synth-real-');
  mkdirSync(join(real, 'train-jpg'));
  writeFileSync(join(real, 'train-jpg', 'train_0.jpg'), 'a real chip');
  writeFileSync(join(real, 'train-jpg', 'train_9.jpg'), 'another');
  await assert.rejects(synthesize({ outDir: real, count: 3, seed: 0, size: 32 }), (e: unknown) => {
    assert.ok(e instanceof DataError, 'regression: a plain Error, which the CLI reports as an internal error');
    assert.equal(e.code, 'SYNTH_FAILED');
    assert.match(e.message, /holds 2 files that were not generated by exp/);
    return true;
  });
  assert.equal(readFileSync(join(real, 'train-jpg', 'train_0.jpg'), 'utf8'), 'a real chip');
  await synthesize({ outDir: real, count: 3, seed: 0, size: 32, overwrite: true });
  assert.deepEqual(readdirSync(join(real, 'train-jpg')).sort(), ['train_0.jpg', 'train_1.jpg', 'train_2.jpg']);
});

test('regression: exp data synth into a folder whose train-jpg is a file was an internal error (exit 70), with or without --force', async () => {
  const cwd = tempDir('exp-synth-notdir-');
  mkdirSync(join(cwd, 'ds'));
  writeFileSync(join(cwd, 'ds', 'train-jpg'), 'not a folder');
  for (const force of [[], ['--force']]) {
    const r = await expIn(['data', 'synth', '--out', 'ds', '--count', '3', '--size', '32', ...force], { cwd, env: {} });
    assert.equal(r.code, 2, `${force.join(' ')}: ${r.stderr}`);
    assert.match(r.stderr, /train-jpg is not a folder, so the images cannot be written there.*\n.*fix: remove or rename it.*\[SYNTH_FAILED\]/s);
    assert.equal(readFileSync(join(cwd, 'ds', 'train-jpg'), 'utf8'), 'not a folder', 'the file is never replaced');
  }
});

test('parseLabelCsv tolerates BOM, CRLF, extra spaces and empty tags, and parses RFC 4180 quotes', () => {
  const text = '\uFEFFimage_name,tags\r\ntrain_0,clear  primary \r\n train_1 ,\r\n\r\n"train_2","haze ""x"", primary"\r\n"train_3","clear\nwater"\r\ntrain_4, cloudy\r\n';
  const { rows, problems } = parseLabelCsv(text, 'labels.csv');
  assert.deepEqual(problems, []);
  assert.deepEqual(rows, [
    { name: 'train_0', tags: ['clear', 'primary'], line: 2 },
    { name: 'train_1', tags: [], line: 3 },
    { name: 'train_2', tags: ['haze', '"x",', 'primary'], line: 5 },
    { name: 'train_3', tags: ['clear', 'water'], line: 6 },
    { name: 'train_4', tags: ['cloudy'], line: 8 },
  ]);
  // Columns in another order, extra columns as a warning, no trailing newline.
  const other = parseLabelCsv('tags,source,image_name\nclear primary,planet,a\nhaze,planet,b', 'x.csv');
  assert.deepEqual(other.rows.map((r) => [r.name, r.tags, r.line]), [['a', ['clear', 'primary'], 2], ['b', ['haze'], 3]]);
  assert.deepEqual(other.problems.map((p) => [p.code, p.severity, p.line]), [['EXTRA_COLUMN', 'warning', 1]]);
});

test('parseLabelCsv reports duplicates, short rows, bad quotes and missing columns with file and line', () => {
  const dup = parseLabelCsv('image_name,tags\na,clear\nb,haze\na,cloudy\nc\n,clear\nd,clear clear\n', 'l.csv');
  assert.deepEqual(dup.rows.map((r) => r.name), ['a', 'b', 'd']);
  assert.deepEqual(dup.rows[0]!.tags, ['clear'], 'the first of two duplicate rows is kept');
  assert.deepEqual(dup.problems.map((p) => [p.code, p.severity, p.file, p.line]), [
    ['DUPLICATE_NAME', 'error', 'l.csv', 4], ['FIELD_COUNT', 'error', 'l.csv', 5], ['EMPTY_NAME', 'error', 'l.csv', 6], ['DUPLICATE_TAG', 'warning', 'l.csv', 7],
  ]);
  assert.match(dup.problems[0]!.message, /line 2/);

  const missing = parseLabelCsv('\n\nname,labels\na,clear\n', 'm.csv');
  assert.deepEqual(missing.rows, []);
  assert.deepEqual(missing.problems.map((p) => [p.code, p.severity, p.file, p.line]), [['MISSING_COLUMN', 'error', 'm.csv', 3]]);
  assert.match(missing.problems[0]!.message, /'image_name' or 'tags'/);
  assert.deepEqual(parseLabelCsv('', 'e.csv').problems.map((p) => p.code), ['EMPTY_FILE']);

  const unterminated = parseLabelCsv('image_name,tags\na,clear\nb,"haze\nc,clear\n', 'u.csv');
  assert.deepEqual(unterminated.problems.map((p) => [p.code, p.line]), [['UNTERMINATED_QUOTE', 3]]);
  const stray = parseLabelCsv('image_name,tags\na"b,clear\n', 's.csv');
  assert.deepEqual(stray.rows.map((r) => r.name), ['a"b']);
  assert.deepEqual(stray.problems.map((p) => [p.code, p.severity, p.line]), [['BAD_QUOTE', 'warning', 2]]);
});

test('exp data synth and exp data stats', async () => {
  const cwd = tempDir('exp-synth-cli-');
  const run = async (cmd: typeof dataSynthCommand, argv: string[]): Promise<{ code: number; out: string; err: string }> => {
    const r = await expIn([...cmd.name.split(' '), ...argv], { cwd, env: {} });
    return { code: r.code, out: r.stdout, err: r.stderr };
  };
  assert.equal(dataSynthCommand.name, 'data synth');
  assert.equal(dataStatsCommand.name, 'data stats');
  const made = await run(dataSynthCommand, ['--out', 'ds', '--count', '30', '--seed', '3', '--size', '64']);
  assert.equal(made.code, 0, made.err);
  assert.match(made.out, /^Wrote 30 images \(64x64 JPEG, seed 3\) and train_v2\.csv to ds in [\d.]+ s \(\d+ img\/s\)/);
  assert.match(made.out, /^primary +\d+ +\d+\.\d%$/m);
  // A second run into the same folder would overwrite it: refused unless --force.
  const again = await run(dataSynthCommand, ['--out', 'ds', '--count', '30']);
  assert.equal(again.code, 2);
  assert.match(again.err, /already holds a dataset.*\n.*fix: choose another --out, or add --force/);
  writeFileSync(join(cwd, 'a-file'), 'x');
  const onFile = await run(dataSynthCommand, ['--out', 'a-file']);
  assert.deepEqual([onFile.code, /is a file, not a folder.*\[BAD_OPTION_VALUE\]/s.test(onFile.err)], [2, true], 'regression: --out FILE was an internal error');
  assert.equal((await run(dataSynthCommand, ['--out', 'ds', '--count', '30', '--seed', '3', '--size', '64', '--force'])).code, 0);
  const many = await run(dataSynthCommand, ['--out', 'ds2', '--count', 'many']);
  assert.deepEqual([many.code, /--count must be an integer, got 'many'.*\[BAD_OPTION_VALUE\]/s.test(many.err)], [2, true]);

  const text = await run(dataStatsCommand, ['ds']);
  assert.equal(text.code, 0, text.err);
  assert.match(text.out, /^ds\/train_v2\.csv: 30 images$/m);
  assert.match(text.out, /^Most common pairs$/m);
  assert.match(text.out, /^cloudy has no other tag +0$/m);
  const json = JSON.parse((await run(dataStatsCommand, ['ds', '--json'])).out) as { images: number; tags: { tag: string }[]; checks: { count: number }[] };
  assert.equal(json.images, 30);
  assert.equal(json.tags.length, 17);
  assert.ok(json.checks.every((c) => c.count === 0));

  // Rule breakers are listed with their line; missing columns and a missing CSV exit 2.
  mkdirSync(join(cwd, 'bad'));
  writeFileSync(join(cwd, 'bad', 'train_v2.csv'), 'image_name,tags\na,clear primary\nb,cloudy primary\nc,primary\n');
  const bad = await run(dataStatsCommand, ['bad']);
  assert.equal(bad.code, 0);
  assert.match(bad.out, /^exactly one weather tag .* 1 +c \(line 4: primary\)$/m);
  assert.match(bad.out, /^cloudy has no other tag +1 +b \(line 3: cloudy primary\)$/m);
  writeFileSync(join(cwd, 'bad', 'train_v2.csv'), 'name,labels\na,clear\n');
  const cols = await run(dataStatsCommand, ['bad']);
  assert.equal(cols.code, 2);
  assert.match(cols.err, /^bad\/train_v2\.csv:1 {2}the header has no column 'image_name' or 'tags'/);
  assert.equal((await run(dataStatsCommand, ['nowhere'])).code, 2);
});
