/** exp cache ls|rm|gc: the shared feature cache's keys, their size and what they cover, and freeing them. */
import { resolve } from 'node:path';
import { defineCommand } from './command.js';
import { EXIT, cwdOf, type Io } from './io.js';
import { JSON_FLAG } from './flags.js';
import { displayPath, table } from './report.js';
import { UsageError } from '../errors.js';
import { featureCacheRoot } from '../data/feature-cache.js';
import { boundCache, listKeys, removeKey, type KeyInfo } from '../data/feature-cache-gc.js';

const DIR_FLAG = { type: 'string', arg: 'DIR', description: 'Feature cache folder (default $EXP_CACHE_DIR/features, or ~/.cache/exp/features).' } as const;
const rootOf = (flag: string | undefined, io: Io): string => (flag ? resolve(cwdOf(io), flag) : featureCacheRoot(io.env));
const gb = (b: number): string => (b >= 1e9 ? `${(b / 1e9).toFixed(2)} GB` : `${(b / 1e6).toFixed(1)} MB`);

/** What a key covers, in one line (key.json's parts). */
function covers(k: KeyInfo): string {
  const p = k.parts;
  if (!p) return '(no key.json: made by another version, or damaged)';
  return `data ${p.fingerprint} split ${p.split} ${p.image_size}px ${p.resize} ${p.preprocessing} weights ${p.weights} frozen ${p.frozen_layers} layers [${p.shape.join('x')}] ${p.backend} ${p.dtype}`;
}

export const cacheLsCommand = defineCommand({
  name: 'cache ls',
  summary: "List the shared feature cache's keys: entries, size, last use and what each key covers.",
  usage: 'cache ls [--dir DIR] [--json]',
  details: 'A key is one (data, split, image size, resize, preprocessing, base weights, frozen depth, backend, dtype); an entry is one image in one view.',
  positionals: { name: 'argument', max: 0 },
  flags: { dir: DIR_FLAG, json: JSON_FLAG },
  async run(_args, flags, io) {
    const root = rootOf(flags.dir, io);
    const keys = listKeys(root).sort((a, b) => b.lastUsed - a.lastUsed);
    if (flags.json) {
      io.stdout.write(
        JSON.stringify({ dir: root, keys: keys.map((k) => ({ ...k, lastUsed: k.lastUsed ? new Date(k.lastUsed).toISOString() : null })) }, null, 2) + '\n',
      );
      return EXIT.ok;
    }
    if (keys.length === 0) {
      io.stdout.write(`${displayPath(root, cwdOf(io))}: no feature cache entries\n`);
      return EXIT.ok;
    }
    const rows = keys.map((k) => [k.key, String(k.entries), gb(k.bytes), k.lastUsed ? new Date(k.lastUsed).toISOString().slice(0, 19) : '-', covers(k)]);
    io.stdout.write(table(['key', 'entries', 'size', 'last used', 'covers'], rows));
    io.stdout.write(`\n${keys.length} key${keys.length === 1 ? '' : 's'}, ${gb(keys.reduce((a, k) => a + k.bytes, 0))} in ${displayPath(root, cwdOf(io))}\n`);
    return EXIT.ok;
  },
});

export const cacheRmCommand = defineCommand({
  name: 'cache rm',
  summary: 'Remove feature cache keys (KEY... or --all). A run reading one recomputes what it no longer finds.',
  usage: 'cache rm KEY... | --all [--dir DIR]',
  positionals: { name: 'KEY', min: 0 },
  flags: { dir: DIR_FLAG, all: { type: 'boolean', description: 'Remove every key.' } },
  async run(args, flags, io) {
    const root = rootOf(flags.dir, io);
    if (flags.all === args.length > 0)
      throw new UsageError({ code: 'USAGE', message: 'give KEYs or --all (not both)', fix: "see the keys with 'exp cache ls'" });
    const known = new Map(listKeys(root).map((k) => [k.key, k]));
    const keys = flags.all ? [...known.keys()] : args;
    const unknown = keys.filter((k) => !known.has(k));
    if (unknown.length > 0)
      throw new UsageError({
        code: 'PATH_NOT_FOUND',
        message: `no feature cache key ${unknown.map((k) => `'${k}'`).join(', ')} in ${root}`,
        fix: "see the keys with 'exp cache ls'",
      });
    let freed = 0;
    for (const k of keys) {
      if (removeKey(root, k)) {
        freed += known.get(k)!.bytes;
        io.stdout.write(`removed ${k} (${known.get(k)!.entries} entries, ${gb(known.get(k)!.bytes)})\n`);
      }
    }
    io.stdout.write(`freed ${gb(freed)}\n`);
    return EXIT.ok;
  },
});

export const cacheGcCommand = defineCommand({
  name: 'cache gc',
  summary: 'Bring the feature cache under a size, least recently used entries first; leftovers of interrupted writes go too.',
  usage: 'cache gc [--max-gb N] [--dir DIR]',
  positionals: { name: 'argument', max: 0 },
  flags: {
    dir: DIR_FLAG,
    'max-gb': { type: 'number', arg: 'N', default: 50, min: 0, description: 'Size to bring the cache under, in GB (0 empties it).' },
  },
  async run(_args, flags, io) {
    const root = rootOf(flags.dir, io);
    const max = flags['max-gb'] * 1e9;
    const r = boundCache(root, max, max);
    io.stdout.write(`${displayPath(root, cwdOf(io))}: ${gb(r.bytesBefore)} -> ${gb(r.bytesAfter)}, removed ${r.removed} entries\n`);
    return EXIT.ok;
  },
});
