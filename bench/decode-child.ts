/**
 * Child process of the data bench: decodes the first N JPEGs of a synthetic set with
 * decodeMany, so that UV_THREADPOOL_SIZE (read by libuv once, at first use) can differ from
 * the parent's. Prints {ms, cpuMs, mainMs, n, failures} as one JSON line.
 *
 * Usage: node --import tsx bench/decode-child.ts DIR N
 */
import { join } from 'node:path';
import { decodeMany } from '../src/data/decode.js';
import { startSpan } from './measure.js';

const [dir, count] = process.argv.slice(2);
if (dir === undefined || count === undefined) throw new Error('usage: decode-child.ts DIR N');
const files = Array.from({ length: Number(count) }, (_, i) => join(dir, 'train-jpg', `train_${i}.jpg`));
await decodeMany(files.slice(0, 32), 128, 'nearest'); // start the pool and load libvips's codecs
const end = startSpan();
const { failures } = await decodeMany(files, 128, 'nearest');
process.stdout.write(JSON.stringify({ ...end(), n: files.length, failures: failures.size }) + '\n');
