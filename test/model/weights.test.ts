import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readdirSync, statSync, utimesSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { WeightsError } from '../../src/model/errors.js';
import {
  downloadVerified,
  fetchWeights,
  findWeights,
  KNOWN_WEIGHTS,
  md5CachePath,
  resolveWeights,
  verifyFile,
  weightsSearchDirs,
  type KnownFile,
} from '../../src/model/weights.js';
import { tempDir } from '../helpers/cli.js';

const FILE = KNOWN_WEIGHTS.vgg16.file;

async function rejects(p: Promise<unknown> | (() => unknown), code: string): Promise<WeightsError> {
  try {
    await (typeof p === 'function' ? p() : p);
  } catch (err) {
    assert.ok(err instanceof WeightsError, String(err));
    assert.equal(err.code, code, err.message);
    return err;
  }
  assert.fail(`expected ${code}`);
}

/** A fake home with the two default folders, and a third folder for $EXP_WEIGHTS_DIR. */
function homes(): { home: string; cache: string; keras: string; custom: string } {
  const home = tempDir('exp-home-');
  const dirs = { home, cache: join(home, '.cache', 'exp', 'weights'), keras: join(home, '.keras', 'models'), custom: join(home, 'custom') };
  for (const d of [dirs.cache, dirs.keras, dirs.custom]) mkdirSync(d, { recursive: true });
  return dirs;
}

test("'imagenet' is looked for in $EXP_WEIGHTS_DIR, then ~/.cache/exp/weights, then ~/.keras/models", () => {
  const { home, cache, keras, custom } = homes();
  const env = { HOME: home, EXP_WEIGHTS_DIR: custom };
  assert.deepEqual(weightsSearchDirs(env), [custom, cache, keras]);
  assert.deepEqual(weightsSearchDirs({ HOME: home }), [cache, keras]);
  writeFileSync(join(keras, FILE), 'k');
  assert.deepEqual(findWeights('imagenet', env), { kind: 'imagenet', path: join(keras, FILE) });
  writeFileSync(join(cache, FILE), 'c');
  assert.deepEqual(findWeights('imagenet', env), { kind: 'imagenet', path: join(cache, FILE) });
  writeFileSync(join(custom, FILE), 'e');
  assert.deepEqual(findWeights('imagenet', env), { kind: 'imagenet', path: join(custom, FILE) });
  assert.deepEqual(findWeights('imagenet', { HOME: home }), { kind: 'imagenet', path: join(cache, FILE) }, 'without the variable');
});

test('a missing ImageNet file is an error naming the file, its URL, every folder searched and the fixes', async () => {
  const { home, cache, keras, custom } = homes();
  const err = await rejects(() => findWeights('imagenet', { HOME: home, EXP_WEIGHTS_DIR: custom }), 'WEIGHTS_NOT_FOUND');
  assert.equal(err.file, FILE);
  for (const s of [FILE, KNOWN_WEIGHTS.vgg16.url, custom, cache, keras, 'exp weights fetch vgg16', 'EXP_WEIGHTS_DIR', 'model.weights: none']) {
    assert.ok(err.message.includes(s), `message names ${s}:\n${err.message}`);
  }
});

test("'none' loads nothing; a path is resolved and must exist", async () => {
  const { home } = homes();
  assert.deepEqual(await resolveWeights('none', { HOME: home }), { kind: 'none' });
  const file = join(home, 'mine.h5');
  writeFileSync(file, 'x');
  assert.deepEqual(await resolveWeights(file, { HOME: home }), { kind: 'file', path: file });
  const err = await rejects(resolveWeights(join(home, 'nope.h5'), { HOME: home }), 'WEIGHTS_NOT_FOUND');
  assert.equal(err.file, join(home, 'nope.h5'));
});

test('an ImageNet file of the wrong size is refused by name, without hashing it', async () => {
  const { home, cache } = homes();
  writeFileSync(join(cache, FILE), 'truncated download');
  const err = await rejects(resolveWeights('imagenet', { HOME: home }), 'WEIGHTS_CHECKSUM');
  assert.equal(err.file, join(cache, FILE));
  assert.match(err.message, /18 bytes, but the published file is 58889256 bytes/);
  assert.ok(err.message.includes(`delete ${join(cache, FILE)}, then run \`exp weights fetch vgg16\``), err.message);
  assert.equal(existsSync(md5CachePath(join(cache, FILE))), false);
});

test('verifyFile hashes once and caches the MD5 by size, mtime and inode', async () => {
  const { home } = homes();
  const path = join(home, 'w.bin');
  const content = Buffer.alloc(3_000_000, 7);
  writeFileSync(path, content);
  // Whole seconds, so that setting the same mtime again below gives the identical mtimeMs.
  const mtime = Math.floor(Date.now() / 1000) - 60;
  utimesSync(path, mtime, mtime);
  const known: KnownFile = { file: 'w.bin', url: 'http://example.invalid/w.bin', size: content.length, md5: createHash('md5').update(content).digest('hex') };
  await verifyFile(path, known, [home]);
  assert.ok(existsSync(md5CachePath(path)));
  // Same size and mtime, other bytes: the cache is trusted (this is what saves the re-hash)...
  writeFileSync(path, Buffer.alloc(content.length, 8));
  utimesSync(path, mtime, mtime);
  await verifyFile(path, known, [home]);
  // ...and a new mtime makes it hash again, and see the difference.
  utimesSync(path, mtime, mtime + 1);
  const err = await rejects(verifyFile(path, known, [home]), 'WEIGHTS_CHECKSUM');
  assert.equal(err.file, path);
  assert.match(err.message, new RegExp(`has MD5 [0-9a-f]{32}, but the published file has ${known.md5}`));
});

async function serve(handler: Parameters<typeof createServer>[1]): Promise<{ url: string; server: Server }> {
  const server = createServer(handler);
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, server };
}

test('a failed download says why and where to put a manually downloaded file, and leaves nothing behind', async () => {
  const { home, cache, keras } = homes();
  const { url, server } = await serve(() => undefined);
  server.close();
  const err = await rejects(fetchWeights('vgg16', undefined, { url: `${url}/x.h5`, env: { HOME: home } }), 'WEIGHTS_DOWNLOAD');
  assert.equal(err.file, join(cache, FILE));
  for (const s of ['ECONNREFUSED', KNOWN_WEIGHTS.vgg16.url, join(cache, FILE), keras, 'EXP_WEIGHTS_DIR'])
    assert.ok(err.message.includes(s), `names ${s}:\n${err.message}`);
  assert.deepEqual(readdirSync(cache), []);

  const notFound = await serve((_req, res) => {
    res.statusCode = 404;
    res.end('no');
  });
  const err404 = await rejects(fetchWeights('vgg16', join(home, 'dest'), { url: `${notFound.url}/x.h5`, env: { HOME: home } }), 'WEIGHTS_DOWNLOAD');
  assert.match(err404.message, /HTTP 404/);
  notFound.server.close();
});

test('downloadVerified streams to a temp file, checks size and MD5, then renames into place', async () => {
  const { home } = homes();
  const body = Buffer.from(Array.from({ length: 200_000 }, (_, i) => i % 251));
  const { url, server } = await serve((_req, res) => res.end(body));
  const known: KnownFile = { file: 'w.h5', url: `${url}/w.h5`, size: body.length, md5: createHash('md5').update(body).digest('hex') };
  const dest = join(home, 'dl', 'w.h5');
  assert.equal(await downloadVerified(known.url, dest, known, [home]), dest);
  assert.equal(statSync(dest).size, body.length);
  assert.ok(existsSync(md5CachePath(dest)), 'the first resolve does not hash it again');
  assert.deepEqual(
    readdirSync(join(home, 'dl')).filter((f) => f.endsWith('.download')),
    [],
  );

  const other = join(home, 'dl2', 'w.h5');
  const err = await rejects(downloadVerified(known.url, other, { ...known, md5: '0'.repeat(32) }, [home]), 'WEIGHTS_CHECKSUM');
  assert.match(err.message, /expected 200000 bytes with MD5 0{32}/);
  assert.deepEqual(readdirSync(join(home, 'dl2')), [], 'a bad download is not kept');
  server.close();
});
