// The Planet-format loader on real JPEGs written by the test: decode, cache, the bad-input
// table of the data-pipeline issue, and the report that keeps anything from vanishing silently.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, writeFileSync, utimesSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import sharp from 'sharp';
import { loadDataset, DataError, type DataConfig } from '../../src/data/planet.js';
import { tempDir } from '../helpers/cli.js';

/** A solid-colour RGB JPEG whose colour encodes its index, so we can check where it lands. */
async function jpeg(r: number, g: number, b: number, w = 32, h = 32): Promise<Buffer> {
  return sharp({ create: { width: w, height: h, channels: 3, background: { r, g, b } } }).jpeg({ quality: 100 }).toBuffer();
}

async function makeDataset(dir: string, csv: string, images: Record<string, Buffer>): Promise<void> {
  mkdirSync(join(dir, 'train-jpg'), { recursive: true });
  writeFileSync(join(dir, 'train_v2.csv'), csv);
  for (const [name, bytes] of Object.entries(images)) writeFileSync(join(dir, 'train-jpg', name), bytes);
}

const cfg = (path: string, over: Partial<DataConfig> = {}): DataConfig => ({
  path, csv: 'train_v2.csv', images: 'train-jpg', image_ext: '.jpg', image_size: 8, resize: 'nearest', limit: null,
  split: { test_size: 0.3, seed: 1 }, on_bad_image: 'error', max_image_bytes: 64 * 2 ** 20, tags: null, synth: null, ...over,
});

test('loads rows in CSV order with a sorted vocabulary, one-hot targets and resized RGB pixels', async () => {
  const dir = tempDir();
  await makeDataset(dir, 'image_name,tags\ntrain_0,primary clear\ntrain_1,water haze primary\ntrain_2,cloudy\n', {
    'train_0.jpg': await jpeg(250, 0, 0), 'train_1.jpg': await jpeg(0, 250, 0, 64, 48), 'train_2.jpg': await jpeg(0, 0, 250),
  });
  const ds = await loadDataset(cfg(dir), { cacheDir: tempDir() });
  assert.deepEqual(ds.names, ['train_0', 'train_1', 'train_2']);
  assert.deepEqual(ds.tags, ['clear', 'cloudy', 'haze', 'primary', 'water']);
  assert.deepEqual(Array.from(ds.targets), [1, 0, 0, 1, 0, /**/ 0, 0, 1, 1, 1, /**/ 0, 1, 0, 0, 0]);
  assert.equal(ds.pixels.length, 3 * 8 * 8 * 3);
  const px = (i: number) => Array.from(ds.pixels.subarray(i * 192 + 3 * 27, i * 192 + 3 * 27 + 3));
  for (const [i, ch] of [[0, 0], [1, 1], [2, 2]] as const) {
    const p = px(i);
    assert.ok(p[ch]! > 240 && p.filter((_, k) => k !== ch).every((v) => v < 15), `image ${i}: ${p}`);
  }
});

test('the decoded cache: a second load decodes nothing; a changed or added image invalidates it', async () => {
  const dir = tempDir();
  const cacheDir = tempDir();
  await makeDataset(dir, 'image_name,tags\na,primary\nb,water\n', { 'a.jpg': await jpeg(10, 10, 10), 'b.jpg': await jpeg(200, 200, 200) });
  const first = await loadDataset(cfg(dir), { cacheDir });
  assert.equal(first.report.cache.hit, false);
  const second = await loadDataset(cfg(dir), { cacheDir });
  assert.equal(second.report.cache.hit, true);
  assert.deepEqual(second.pixels, first.pixels);
  // Another size or kernel is another cache entry.
  assert.equal((await loadDataset(cfg(dir, { image_size: 4 }), { cacheDir })).report.cache.hit, false);
  // A changed image (new bytes and mtime) misses.
  writeFileSync(join(dir, 'train-jpg', 'b.jpg'), await jpeg(0, 0, 0));
  utimesSync(join(dir, 'train-jpg', 'b.jpg'), new Date(), new Date(Date.now() + 5000));
  const third = await loadDataset(cfg(dir), { cacheDir });
  assert.equal(third.report.cache.hit, false);
  assert.ok(third.pixels[192]! < 20, 'the new pixels are used');
  // An added row misses.
  writeFileSync(join(dir, 'train-jpg', 'c.jpg'), await jpeg(0, 0, 0));
  writeFileSync(join(dir, 'train_v2.csv'), 'image_name,tags\na,primary\nb,water\nc,road\n');
  assert.equal((await loadDataset(cfg(dir), { cacheDir })).report.cache.hit, false);
  assert.equal(readdirSync(cacheDir).filter((f) => f.endsWith('.u8')).length, 4);
});

test('bad images: no crash on odd formats; missing, corrupt and truncated files are errors with a list, or skipped and reported', async () => {
  const dir = tempDir();
  const good = await jpeg(100, 150, 200);
  const gray = await sharp({ create: { width: 20, height: 20, channels: 3, background: { r: 90, g: 90, b: 90 } } }).grayscale().jpeg().toBuffer();
  const cmyk = await sharp({ create: { width: 20, height: 20, channels: 3, background: { r: 200, g: 20, b: 20 } } }).toColourspace('cmyk').jpeg().toBuffer();
  const rgba = await sharp({ create: { width: 20, height: 20, channels: 4, background: { r: 1, g: 2, b: 3, alpha: 0.5 } } }).png().toBuffer();
  const big = await sharp({ create: { width: 300, height: 200, channels: 3, background: '#808080', noise: { type: 'gaussian', mean: 128, sigma: 30 } } }).jpeg().toBuffer();
  const truncated = big.subarray(0, Math.floor(big.length / 2));
  await makeDataset(dir, 'image_name,tags\nok,primary\ngray,haze\ncmyk,water\nrgba,road\nbig,clear\nmissing,clear\ncorrupt,clear\ntrunc,clear\n', {
    'ok.jpg': good, 'gray.jpg': gray, 'cmyk.jpg': cmyk, 'rgba.jpg': rgba, 'big.jpg': big,
    'corrupt.jpg': Buffer.from('this is not a jpeg at all'), 'trunc.jpg': truncated,
  });
  const cacheDir = tempDir();
  await assert.rejects(loadDataset(cfg(dir), { cacheDir }), (e: unknown) => {
    assert.ok(e instanceof DataError);
    assert.equal(e.code, 'BAD_IMAGES');
    assert.match(e.message, /^3 of 8 images could not be used/);
    assert.match(e.message, /missing\.jpg \(.*train_v2\.csv:7\): file not found/);
    assert.match(e.message, /corrupt\.jpg \(.*:8\)/);
    assert.match(e.message, /trunc\.jpg \(.*:9\)/);
    assert.match(e.render(), /on_bad_image: skip/);
    return true;
  });
  const ds = await loadDataset(cfg(dir, { on_bad_image: 'skip' }), { cacheDir });
  assert.equal(ds.report.cache.hit, true, 'switching the policy reuses the decode');
  assert.deepEqual(ds.names, ['ok', 'gray', 'cmyk', 'rgba', 'big']);
  assert.deepEqual(ds.report.skipped.map((s) => s.name), ['missing', 'corrupt', 'trunc']);
  const pixel = (i: number) => Array.from(ds.pixels.subarray(i * 192, i * 192 + 3));
  const [g0, g1, g2] = pixel(1);
  assert.ok(g0 === g1 && g1 === g2, 'grayscale becomes three equal channels');
  assert.ok(pixel(2)[0]! > 150 && pixel(2)[1]! < 80, `CMYK becomes RGB: ${pixel(2)}`);
});

test('CSV tolerance: BOM, CRLF, extra spaces, empty tags; duplicates and unlisted files reported; missing columns are an error', async () => {
  const dir = tempDir();
  const img = await jpeg(1, 2, 3);
  await makeDataset(dir, '\ufeffimage_name,tags,extra\r\na,  primary   clear ,x\r\nb,,y\r\na,water,z\r\n', { 'a.jpg': img, 'b.jpg': img, 'stray.jpg': img });
  const ds = await loadDataset(cfg(dir), { cacheDir: tempDir() });
  assert.deepEqual(ds.names, ['a', 'b']);
  assert.deepEqual(ds.tags, ['clear', 'primary']);
  assert.deepEqual(Array.from(ds.targets), [1, 1, 0, 0]);
  assert.deepEqual(ds.report.unlisted, ['stray.jpg']);
  const codes = ds.report.warnings.map((w) => w.code).sort();
  assert.ok(codes.includes('DUPLICATE_NAME'), JSON.stringify(codes));
  assert.ok(codes.includes('EXTRA_COLUMN'), JSON.stringify(codes));

  const bad = tempDir();
  await makeDataset(bad, 'name,labels\na,primary\n', { 'a.jpg': img });
  await assert.rejects(loadDataset(cfg(bad), { cacheDir: tempDir() }), (e: unknown) => e instanceof DataError && e.code === 'CSV_INVALID' && /train_v2\.csv:1/.test(e.message) && /image_name/.test(e.message));
  await assert.rejects(loadDataset(cfg(join(bad, 'nope')), { cacheDir: tempDir() }), (e: unknown) => e instanceof DataError && e.code === 'CSV_NOT_FOUND' && /exp data synth/.test(e.render()));
});
