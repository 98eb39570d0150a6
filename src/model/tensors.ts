/**
 * Named tensors on disk, for checkpoints: `<prefix>.json` (a manifest: name, shape, dtype and
 * byte range of each tensor) and `<prefix>.<id>.bin` (their raw little-endian bytes, back to
 * back). The data file is written and renamed first and the manifest last, so the manifest's
 * rename is the commit point: a crash leaves the previous pair readable, never a mix.
 *
 * The shape of `NamedTensor` is tfjs's own, so `optimizer.getWeights()` / `setWeights()` use
 * these functions directly.
 */
import { createHash, randomBytes } from 'node:crypto';
import { closeSync, fsyncSync, openSync, readdirSync, renameSync, rmSync, writeSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { readFileBounded, readJson, writeJsonAtomic } from '../util/fsx.js';
import { ExpError } from '../errors.js';
import { WeightsError } from './errors.js';

export interface NamedTensor {
  name: string;
  tensor: tf.Tensor;
}

type StoredDtype = 'float32' | 'int32' | 'bool';
const BYTES: Record<StoredDtype, number> = { float32: 4, int32: 4, bool: 1 };

export interface TensorEntry {
  name: string;
  shape: number[];
  dtype: StoredDtype;
  /** Byte offset and length in the data file. */
  offset: number;
  byteLength: number;
}

export interface TensorManifest {
  format: 'exp-tensors';
  /** 2 adds `sha256`; version 1 files (no hash) are still read. */
  version: 1 | 2;
  /** Data file name, in the manifest's folder. */
  data: string;
  byteLength: number;
  /** SHA-256 of the data file, checked on every read: a damaged file is refused, never loaded. */
  sha256?: string;
  tensors: TensorEntry[];
}

const manifestPath = (dir: string, prefix: string): string => join(dir, `${prefix}.json`);
/** A manifest lists a few hundred tensors: kilobytes. A bigger one is not a manifest. */
const MAX_MANIFEST_BYTES = 16 * 2 ** 20;
const isDataFile = (prefix: string, name: string): boolean => name.startsWith(`${prefix}.`) && /^[0-9a-f]{16}\.bin$/.test(name.slice(prefix.length + 1));

/** Whether `dir` holds a committed tensor set under `prefix`. */
export function hasTensors(dir: string, prefix: string): boolean {
  return readJson<TensorManifest>(manifestPath(dir, prefix))?.format === 'exp-tensors';
}

/**
 * Writes the tensors (any shapes; float32, int32 or bool) under `dir/prefix`, replacing a
 * previous set atomically. Values are read with `await tensor.data()`, one at a time, so a
 * GPU backend is never blocked on and only one tensor's copy is in memory. Does not dispose.
 */
export async function writeTensors(dir: string, prefix: string, tensors: readonly NamedTensor[]): Promise<TensorManifest> {
  const seen = new Set<string>();
  for (const { name, tensor } of tensors) {
    if (seen.has(name)) throw new Error(`writeTensors: tensor name '${name}' is used twice (a bug in the caller)`);
    seen.add(name);
    if (!(tensor.dtype in BYTES)) throw new Error(`writeTensors: tensor '${name}' has dtype ${tensor.dtype}; only float32, int32 and bool are stored`);
  }
  mkdirSync(dir, { recursive: true });
  const data = `${prefix}.${randomBytes(8).toString('hex')}.bin`;
  const tmp = join(dir, `.${data}.tmp`);
  const entries: TensorEntry[] = [];
  let offset = 0;
  const hash = createHash('sha256');
  const fd = openSync(tmp, 'w');
  try {
    for (const { name, tensor } of tensors) {
      const values = (await tensor.data()) as Float32Array | Int32Array | Uint8Array;
      const bytes = new Uint8Array(values.buffer, values.byteOffset, values.byteLength);
      hash.update(bytes);
      for (let off = 0; off < bytes.length;) off += writeSync(fd, bytes, off);
      entries.push({ name, shape: [...tensor.shape], dtype: tensor.dtype as StoredDtype, offset, byteLength: bytes.byteLength });
      offset += bytes.byteLength;
    }
    fsyncSync(fd);
  } catch (err) {
    closeSync(fd);
    rmSync(tmp, { force: true });
    throw err;
  }
  closeSync(fd);
  renameSync(tmp, join(dir, data));
  const manifest: TensorManifest = { format: 'exp-tensors', version: 2, data, byteLength: offset, sha256: hash.digest('hex'), tensors: entries };
  writeJsonAtomic(manifestPath(dir, prefix), manifest);
  // Only now is the old data file unreferenced.
  for (const f of readdirSync(dir)) if (f !== data && isDataFile(prefix, f)) rmSync(join(dir, f), { force: true });
  return manifest;
}

/**
 * Reads a tensor set written by writeTensors, in the order written. The caller owns (and
 * disposes) the tensors.
 * @throws WeightsError CHECKPOINT_FORMAT when the manifest or data file is missing, truncated or foreign
 */
export function readTensors(dir: string, prefix: string): NamedTensor[] {
  const file = manifestPath(dir, prefix);
  const bad = (problem: string, layer?: string): WeightsError =>
    new WeightsError({
      code: 'CHECKPOINT_FORMAT',
      file,
      message: problem,
      ...(layer === undefined ? {} : { layer }),
      fix: 'The checkpoint is missing or damaged; delete it and train again (or resume from another checkpoint).',
    });
  let manifest: TensorManifest | undefined;
  try {
    manifest = JSON.parse(readFileBounded(file, MAX_MANIFEST_BYTES, 'checkpoint manifest').toString('utf8')) as TensorManifest;
  } catch (e) {
    if (e instanceof ExpError) throw bad(e.message.split('\n')[0]!);
    manifest = undefined;
  }
  if (
    manifest?.format !== 'exp-tensors' ||
    typeof manifest.byteLength !== 'number' ||
    !Number.isSafeInteger(manifest.byteLength) ||
    manifest.byteLength < 0 ||
    (manifest.version !== 1 && manifest.version !== 2) ||
    !Array.isArray(manifest.tensors) ||
    typeof manifest.data !== 'string' ||
    manifest.data.includes('/')
  ) {
    throw bad(manifest === undefined ? 'checkpoint manifest missing or not JSON' : 'not an exp tensor manifest (format exp-tensors, version 1 or 2)');
  }
  let bin: Buffer;
  try {
    // Bounded by what the manifest says it holds: a data file linked to /dev/zero (or grown) is refused, not read.
    bin = readFileBounded(join(dir, manifest.data), manifest.byteLength, 'checkpoint data file');
  } catch (e) {
    throw bad(e instanceof ExpError ? e.message.split('\n')[0]! : `data file ${manifest.data} is missing`);
  }
  if (bin.byteLength !== manifest.byteLength) throw bad(`data file ${manifest.data} is ${bin.byteLength} bytes, the manifest says ${manifest.byteLength}`);
  for (const { name, shape, dtype, offset, byteLength } of manifest.tensors) {
    const count = shape.reduce((a, b) => a * b, 1);
    if (!(dtype in BYTES) || count * BYTES[dtype] !== byteLength || offset < 0 || offset + byteLength > bin.byteLength) {
      throw bad(`tensor entry does not fit: shape ${JSON.stringify(shape)}, dtype ${dtype}, bytes ${offset}+${byteLength}`, name);
    }
  }
  if (manifest.sha256 !== undefined && createHash('sha256').update(bin).digest('hex') !== manifest.sha256) {
    throw new WeightsError({
      code: 'CHECKPOINT_CORRUPT',
      file: join(dir, manifest.data),
      message: `data file ${manifest.data} does not match the SHA-256 its manifest recorded: it was damaged after it was written`,
      fix: 'exp falls back to another checkpoint when it can; otherwise delete this checkpoint and train again.',
    });
  }
  return manifest.tensors.map(({ name, shape, dtype, offset, byteLength }) => {
    // Copy into a fresh buffer: the file's Buffer may sit at an offset no typed array can view.
    const buf = new Uint8Array(byteLength);
    buf.set(bin.subarray(offset, offset + byteLength));
    const values = dtype === 'float32' ? new Float32Array(buf.buffer) : dtype === 'int32' ? new Int32Array(buf.buffer) : buf;
    return { name, tensor: tf.tensor(values, shape, dtype) };
  });
}

/** Which of a model's weights: every one, or only those that train. */
export type WeightSet = 'all' | 'trainable';

const weightsOf = (model: tf.LayersModel, which: WeightSet): tf.LayerVariable[] => (which === 'all' ? model.weights : model.trainableWeights);

/** A model's weights (all, or the trainable ones), named `layer/weight` (e.g. `block5_conv1/kernel`). */
export function modelTensors(model: tf.LayersModel, which: WeightSet = 'all'): NamedTensor[] {
  // originalName, not name: tfjs suffixes `name` (_1, _2) when another model in the process used it.
  return weightsOf(model, which).map((w) => ({ name: w.originalName, tensor: w.read() }));
}

/** Saves the model's weights (all, or the trainable ones) under `dir/prefix` (see writeTensors). */
export async function saveModelWeights(model: tf.LayersModel, dir: string, prefix = 'weights', which: WeightSet = 'all'): Promise<TensorManifest> {
  return writeTensors(dir, prefix, modelTensors(model, which));
}

/**
 * Loads weights saved by saveModelWeights into a model of the same architecture. The saved set
 * must match the model's weights exactly (names and shapes), and is checked in full before any
 * weight is assigned, so a failed load leaves the model as it was.
 * @throws WeightsError CHECKPOINT_FORMAT, CHECKPOINT_MISMATCH
 */
export function loadModelWeights(model: tf.LayersModel, dir: string, prefix = 'weights', which: WeightSet = 'all'): void {
  const saved = readTensors(dir, prefix);
  try {
    const byName = new Map(saved.map((t) => [t.name, t.tensor]));
    const file = manifestPath(dir, prefix);
    const mismatch = (problem: string, layer: string): WeightsError =>
      new WeightsError({
        code: 'CHECKPOINT_MISMATCH',
        file,
        layer,
        message: problem,
        fix: 'The checkpoint is from a model with another configuration (head, pooling, image size or tags); load it into the model it was saved from.',
      });
    const targets = weightsOf(model, which);
    for (const w of targets) {
      const t = byName.get(w.originalName);
      if (!t) throw mismatch(`checkpoint has no tensor '${w.originalName}'`, w.originalName);
      if (t.shape.length !== w.shape.length || t.shape.some((d, i) => d !== w.shape[i])) {
        throw mismatch(
          `tensor '${w.originalName}' has shape ${JSON.stringify(t.shape)} in the checkpoint but ${JSON.stringify(w.shape)} in the model`,
          w.originalName,
        );
      }
      byName.delete(w.originalName);
    }
    const extra = [...byName.keys()];
    if (extra.length > 0) throw mismatch(`checkpoint holds tensors the model does not have: ${extra.join(', ')}`, extra[0]!);
    const all = new Map(saved.map((t) => [t.name, t.tensor]));
    for (const w of targets) w.write(all.get(w.originalName)!);
  } finally {
    tf.dispose(saved.map((t) => t.tensor));
  }
}
