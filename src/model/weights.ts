/**
 * Where the base network's weights come from: `model.weights` is 'imagenet' (Keras's no-top
 * file, searched for in a few folders and checked against its published size and MD5),
 * 'none' (keep the seeded random init) or a path to a Keras .h5 file. Also downloads the
 * ImageNet file for `exp weights fetch vgg16`. Free of TensorFlow.js and HDF5, so light
 * processes (a preflight check in `exp run`) can find and verify weights; keras-h5.ts loads them.
 */
import { createHash } from 'node:crypto';
import { createReadStream, createWriteStream, existsSync, mkdirSync, renameSync, rmSync, statSync, type Stats } from 'node:fs';
import { homedir } from 'node:os';
import { basename, dirname, join, resolve } from 'node:path';
import { Readable, Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { ReadableStream as WebReadableStream } from 'node:stream/web';
import { readJson, writeJsonAtomic } from '../util/fsx.js';
import { WeightsError } from './errors.js';

/** A file we know by its published size and MD5. */
export interface KnownFile {
  file: string;
  url: string;
  size: number;
  md5: string;
}

/** Published weight files, by the name `exp weights fetch` takes. */
export const KNOWN_WEIGHTS = {
  vgg16: {
    file: 'vgg16_weights_tf_dim_ordering_tf_kernels_notop.h5',
    url: 'https://storage.googleapis.com/tensorflow/keras-applications/vgg16/vgg16_weights_tf_dim_ordering_tf_kernels_notop.h5',
    size: 58_889_256,
    md5: '6d6bbae143d832006294945121d1f1fc',
  },
} as const satisfies Record<string, KnownFile>;

export type KnownWeightsName = keyof typeof KNOWN_WEIGHTS;

/** Where the weights come from; 'none' keeps the model's seeded initialisation. */
export type WeightsSource = { kind: 'none' } | { kind: 'imagenet'; path: string } | { kind: 'file'; path: string };

type Env = Readonly<Record<string, string | undefined>>;

/** The folder `exp weights fetch` downloads into: ~/.cache/exp/weights. */
export const defaultWeightsDir = (env: Env = process.env): string => join(env.HOME || homedir(), '.cache', 'exp', 'weights');

/** Folders searched for the ImageNet file, in order: $EXP_WEIGHTS_DIR, ~/.cache/exp/weights, ~/.keras/models (where Keras caches it). */
export function weightsSearchDirs(env: Env = process.env): string[] {
  const dirs = [defaultWeightsDir(env), join(env.HOME || homedir(), '.keras', 'models')];
  return env.EXP_WEIGHTS_DIR ? [resolve(env.EXP_WEIGHTS_DIR), ...dirs] : dirs;
}

const howToGet = (known: KnownFile, dirs: readonly string[]): string =>
  [
    'run `exp weights fetch vgg16` (downloads it into ~/.cache/exp/weights), or download',
    `  ${known.url}`,
    'yourself (e.g. on a machine with internet) and put it in one of:',
    ...dirs.map((d) => `  ${d}`),
    'or set EXP_WEIGHTS_DIR to the folder that holds it. model.weights: none trains from random init instead.',
  ].join('\n');

/**
 * Finds the weights named by `spec` without reading them: the first search folder holding the
 * ImageNet file, or the given path (resolved against the working directory).
 * @throws WeightsError WEIGHTS_NOT_FOUND, naming the file, its URL and every folder searched
 */
export function findWeights(spec: string, env: Env = process.env): WeightsSource {
  if (spec === 'none') return { kind: 'none' };
  if (spec === 'imagenet') {
    const known = KNOWN_WEIGHTS.vgg16;
    const dirs = weightsSearchDirs(env);
    const found = dirs.map((d) => join(d, known.file)).find((p) => existsSync(p));
    if (found) return { kind: 'imagenet', path: found };
    throw new WeightsError({
      code: 'WEIGHTS_NOT_FOUND',
      file: known.file,
      message: `VGG16 ImageNet weights (${known.file}) not found in ${dirs.join(', ')}`,
      fix: `To fix: ${howToGet(known, dirs)}`,
    });
  }
  const path = resolve(spec);
  if (!existsSync(path)) {
    throw new WeightsError({
      code: 'WEIGHTS_NOT_FOUND',
      file: path,
      message: 'weights file named by model.weights not found',
      fix: "Fix the path in model.weights (relative paths are relative to the experiment file), or use 'imagenet' or 'none'.",
    });
  }
  return { kind: 'file', path };
}

/**
 * Finds the weights (see findWeights) and, for the official ImageNet file (found by search or
 * named by path), checks its size and MD5. The MD5 is cached next to the file, so only the
 * first run hashes it.
 * @throws WeightsError WEIGHTS_NOT_FOUND, WEIGHTS_CHECKSUM
 */
export async function resolveWeights(spec: string, env: Env = process.env): Promise<WeightsSource> {
  const source = findWeights(spec, env);
  if (source.kind !== 'none' && basename(source.path) === KNOWN_WEIGHTS.vgg16.file) {
    await verifyFile(source.path, KNOWN_WEIGHTS.vgg16, weightsSearchDirs(env));
  }
  return source;
}

interface Verified {
  size: number;
  mtimeMs: number;
  ino: number;
  md5: string;
}

/** Hidden sidecar caching a file's MD5, valid while the file's size, mtime and inode are unchanged. */
export const md5CachePath = (path: string): string => join(dirname(path), `.${basename(path)}.md5.json`);

const sameFile = (v: Verified | undefined, st: Stats): v is Verified => v !== undefined && v.size === st.size && v.mtimeMs === st.mtimeMs && v.ino === st.ino;

/** MD5 of a file, streamed (the file is never held in memory) and cached in the sidecar. */
export async function fileMd5(path: string): Promise<string> {
  const st = statSync(path);
  const cached = readJson<Verified>(md5CachePath(path));
  if (sameFile(cached, st)) return cached.md5;
  const hash = createHash('md5');
  await pipeline(createReadStream(path), hash);
  const md5 = hash.digest('hex');
  rememberMd5(path, md5);
  return md5;
}

function rememberMd5(path: string, md5: string): void {
  const st = statSync(path);
  // Best effort: a read-only folder (a shared ~/.keras) only costs a re-hash next time.
  try {
    writeJsonAtomic(md5CachePath(path), { size: st.size, mtimeMs: st.mtimeMs, ino: st.ino, md5 } satisfies Verified);
  } catch {
    /* see above */
  }
}

/**
 * Checks a file's size (cheap, first) and MD5 against the published ones.
 * @throws WeightsError WEIGHTS_CHECKSUM naming the file
 */
export async function verifyFile(path: string, known: KnownFile, dirs: readonly string[] = weightsSearchDirs()): Promise<void> {
  const size = statSync(path).size;
  const md5 = size === known.size ? await fileMd5(path) : undefined;
  if (md5 === known.md5) return;
  throw new WeightsError({
    code: 'WEIGHTS_CHECKSUM',
    file: path,
    message:
      md5 === undefined
        ? `${known.file} is ${size} bytes, but the published file is ${known.size} bytes (an interrupted or different download)`
        : `${known.file} has MD5 ${md5}, but the published file has ${known.md5} (a damaged or different file)`,
    fix: `To fix: delete ${path}, then ${howToGet(known, dirs)}`,
  });
}

export interface FetchOptions {
  /** Another source of the same file (a mirror); defaults to the published URL. */
  url?: string;
  env?: Env;
}

/**
 * Downloads a known weights file into `destDir` (default ~/.cache/exp/weights): to a temp
 * file, checked against the published size and MD5, then renamed into place, so an
 * interrupted download never looks like a good file. Returns the file's path.
 * @throws WeightsError WEIGHTS_DOWNLOAD (with where to put a manually downloaded file), WEIGHTS_CHECKSUM
 */
export async function fetchWeights(name: KnownWeightsName, destDir?: string, opts: FetchOptions = {}): Promise<string> {
  const env = opts.env ?? process.env;
  const known = KNOWN_WEIGHTS[name];
  return downloadVerified(opts.url ?? known.url, join(destDir ?? defaultWeightsDir(env), known.file), known, weightsSearchDirs(env));
}

/** The download behind fetchWeights, for any file with a known size and MD5. */
export async function downloadVerified(url: string, dest: string, known: KnownFile, dirs: readonly string[] = weightsSearchDirs()): Promise<string> {
  const failed = (why: string, cause?: unknown): WeightsError =>
    new WeightsError({
      code: 'WEIGHTS_DOWNLOAD',
      file: dest,
      cause,
      message: `could not download ${known.file} from ${url}: ${why}`,
      fix: `Without internet access, download ${known.url} elsewhere and copy it to ${dest}\n(or into any of: ${dirs.join(', ')}; or set EXP_WEIGHTS_DIR to its folder).`,
    });
  mkdirSync(dirname(dest), { recursive: true });
  const tmp = join(dirname(dest), `.${basename(dest)}.${process.pid}.download`);
  try {
    let res: Response;
    try {
      res = await fetch(url);
    } catch (err) {
      throw failed(describe(err), err);
    }
    if (!res.ok || !res.body) throw failed(`HTTP ${res.status} ${res.statusText}`);
    const hash = createHash('md5');
    let size = 0;
    const tap = new Transform({
      transform(chunk: Buffer, _enc, done) {
        hash.update(chunk);
        size += chunk.length;
        done(null, chunk);
      },
    });
    try {
      await pipeline(Readable.fromWeb(res.body as WebReadableStream<Uint8Array>), tap, createWriteStream(tmp));
    } catch (err) {
      throw failed(`the transfer broke off after ${size} bytes (${describe(err)})`, err);
    }
    const md5 = hash.digest('hex');
    if (size !== known.size || md5 !== known.md5) {
      throw new WeightsError({
        code: 'WEIGHTS_CHECKSUM',
        file: url,
        message: `downloaded ${size} bytes with MD5 ${md5}; expected ${known.size} bytes with MD5 ${known.md5}`,
        fix: `Try again, or download ${known.url} yourself and copy it to ${dest}.`,
      });
    }
    renameSync(tmp, dest);
    rememberMd5(dest, md5);
    return dest;
  } finally {
    rmSync(tmp, { force: true });
  }
}

/** fetch() hides the reason (DNS, refused, TLS) in `cause`; surface it. */
function describe(err: unknown): string {
  const e = err as { message?: string; cause?: { message?: string; code?: string } };
  const inner = e.cause ? ` (${e.cause.code ?? ''}${e.cause.code && e.cause.message ? ': ' : ''}${e.cause.message ?? ''})` : '';
  return `${e.message ?? String(err)}${inner}`;
}
