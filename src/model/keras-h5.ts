/**
 * Reads Keras (2.x, "legacy h5") weight files with h5wasm and puts the weights into a tfjs
 * model by layer name, as Keras's `load_weights(..., by_name=True)` does.
 *
 * Layout: the root (or `model_weights/` in a full-model file) has the attribute `layer_names`
 * (or chunks `layer_names0`, `layer_names1`, ... when it exceeded HDF5's 64 KiB attribute
 * limit); each layer is a group with the attribute `weight_names`, naming datasets in that
 * group, e.g. `block1_conv1/block1_conv1_W_1:0` (kernel, HWIO, which is also tfjs's layout)
 * and `block1_conv1/block1_conv1_b_1:0` (bias). Weights pair up with the layer's weights by
 * position, as in Keras.
 */
import { closeSync, existsSync, fstatSync, openSync, readSync, statSync } from 'node:fs';
import * as tf from '@tensorflow/tfjs';
import h5wasm from 'h5wasm/node';
import type { Dataset, Group } from 'h5wasm/node';
import { WeightsError } from './errors.js';
import { VGG16_CONV_LAYERS } from './vgg16.js';
import type { WeightsSource } from './weights.js';

/** Reads a string-list attribute, joining Keras's chunks `name0`, `name1`, ... when the plain one is absent. */
export function readStringList(group: Group, name: string): string[] | undefined {
  const attrs = group.attrs;
  const one = (n: string): string[] => {
    const v = attrs[n]!.value;
    // Keras writes an empty list (a layer without weights) as an empty float64 array.
    const list: unknown[] = v === null ? [] : typeof v === 'string' ? [v] : Array.from(v as ArrayLike<unknown>);
    // Keras writes fixed-length byte strings; strip the NUL padding HDF5 may hand back.
    return list.map((s) => String(s).replace(/\0+$/, ''));
  };
  if (name in attrs) return one(name);
  if (!(`${name}0` in attrs)) return undefined;
  const out: string[] = [];
  for (let i = 0; `${name}${i}` in attrs; i++) out.push(...one(`${name}${i}`));
  return out;
}

const SIGNATURE = Buffer.from([0x89, 0x48, 0x44, 0x46, 0x0d, 0x0a, 0x1a, 0x0a]);

/** HDF5's 8-byte signature sits at offset 0, or after a user block at 512, 1024, 2048, ... */
function hasHdf5Signature(path: string): boolean {
  const fd = openSync(path, 'r');
  try {
    const size = fstatSync(fd).size;
    const buf = Buffer.alloc(8);
    for (let at = 0; at + 8 <= size; at = at === 0 ? 512 : at * 2) {
      if (readSync(fd, buf, 0, 8, at) === 8 && buf.equals(SIGNATURE)) return true;
    }
    return false;
  } finally {
    closeSync(fd);
  }
}

/** One layer's weight datasets as listed in the file. */
export interface H5Layer {
  name: string;
  weights: { name: string; shape: number[]; dataset: Dataset }[];
}

/** Opens a Keras weights file; the caller must `close()` it. */
export async function openKerasH5(path: string): Promise<{ file: InstanceType<typeof h5wasm.File>; layers: Map<string, H5Layer> }> {
  if (!existsSync(path)) {
    throw new WeightsError({
      code: 'WEIGHTS_NOT_FOUND',
      message: 'weights file not found',
      file: path,
      fix: 'Check model.weights: a path is relative to the experiment file that names it.',
    });
  }
  const notHdf5 = (cause?: unknown): WeightsError =>
    new WeightsError({
      code: 'WEIGHTS_FORMAT',
      message: 'not an HDF5 file',
      file: path,
      cause,
      fix: 'Give a Keras .h5 weights file (model.save_weights("x.h5") in Keras 2, or the ImageNet file).',
    });
  // Opening a FIFO would block and a device has no end: only a regular file is read.
  if (!statSync(path).isFile())
    throw new WeightsError({
      code: 'WEIGHTS_FORMAT',
      message: 'not a regular file (a device, FIFO or folder)',
      file: path,
      fix: 'Give a Keras .h5 weights file.',
    });
  // h5wasm does not throw on a non-HDF5 file (it prints HDF5's error stack and returns id -1), so look first.
  if (!hasHdf5Signature(path)) throw notHdf5();
  await h5wasm.ready;
  let file: InstanceType<typeof h5wasm.File>;
  try {
    file = new h5wasm.File(path, 'r');
  } catch (cause) {
    throw notHdf5(cause);
  }
  if (file.file_id < 0n) throw notHdf5();
  try {
    let root: Group = file;
    if (readStringList(root, 'layer_names') === undefined) {
      const inner = file.get('model_weights');
      if (inner instanceof h5wasm.Group) root = inner;
    }
    const names = readStringList(root, 'layer_names');
    if (names === undefined) {
      throw new WeightsError({
        code: 'WEIGHTS_FORMAT',
        message: "HDF5 file has no 'layer_names' attribute, so it is not a Keras 2 weights file",
        file: path,
        fix: 'Save the weights with Keras 2 (model.save_weights("x.h5")); Keras 3 .weights.h5 files use another layout.',
      });
    }
    const layers = new Map<string, H5Layer>();
    for (const name of names) {
      const group = root.get(name);
      if (!(group instanceof h5wasm.Group)) continue;
      const weights = (readStringList(group, 'weight_names') ?? []).map((wn) => {
        const ds = group.get(wn);
        if (!(ds instanceof h5wasm.Dataset)) {
          throw new WeightsError({
            code: 'WEIGHTS_FORMAT',
            message: `layer lists weight '${wn}' but the file has no such dataset`,
            file: path,
            layer: name,
            fix: 'The file is damaged or was not written by Keras; re-export it.',
          });
        }
        return { name: wn, shape: ds.shape ?? [], dataset: ds };
      });
      layers.set(name, { name, weights });
    }
    return { file, layers };
  } catch (err) {
    file.close();
    throw err;
  }
}

export interface LoadReport {
  /** Model layers whose weights came from the file, in model order. */
  loaded: string[];
  /** Layers with weights in the file that the model does not have (e.g. fc1 of a with-top file). */
  ignored: string[];
}

const sameShape = (a: readonly (number | null)[], b: readonly number[]): boolean => a.length === b.length && a.every((d, i) => d === b[i]);

/**
 * Loads a Keras HDF5 weights file into `model` by layer name. Every VGG16 conv layer of the
 * model must be in the file; other model layers (the head) are loaded only if the file has a
 * layer of the same name. Shapes are checked for every layer before any weight is assigned,
 * so a failed load leaves the model as it was.
 *
 * @throws WeightsError WEIGHTS_NOT_FOUND, WEIGHTS_FORMAT, WEIGHTS_MISSING_LAYER, WEIGHTS_SHAPE
 */
export async function loadKerasWeights(model: tf.LayersModel, path: string): Promise<LoadReport> {
  const { file, layers } = await openKerasH5(path);
  try {
    const required = new Set(VGG16_CONV_LAYERS);
    const targets = model.layers.filter((l) => l.weights.length > 0 && (required.has(l.name) || layers.has(l.name)));
    // Check everything before assigning anything; the first problem in model order is reported.
    for (const layer of targets) {
      const h5 = layers.get(layer.name);
      if (!h5) {
        const missing = targets.filter((l) => !layers.has(l.name)).map((l) => l.name);
        throw new WeightsError({
          code: 'WEIGHTS_MISSING_LAYER',
          layer: layer.name,
          file: path,
          message: `weights file has no weights for layer '${layer.name}'${missing.length > 1 ? ` (nor for ${missing.slice(1).join(', ')})` : ''}`,
          fix: "Give a file saved from a Keras VGG16 with Keras's layer names (block1_conv1 ... block5_conv3), e.g. the ImageNet no-top file.",
        });
      }
      const want = layer.weights.map((w) => w.shape);
      const got = h5.weights.map((w) => w.shape);
      if (want.length !== got.length || !want.every((s, i) => sameShape(s, got[i]!))) {
        throw new WeightsError({
          code: 'WEIGHTS_SHAPE',
          layer: layer.name,
          file: path,
          message: `layer '${layer.name}' has weights of shape ${JSON.stringify(got)} in the file but ${JSON.stringify(want)} in the model`,
          fix: 'The file is for another architecture or input channels; use VGG16 weights, or model.weights: none.',
        });
      }
      for (const w of h5.weights) if (!isFloat(w.dataset)) throw notFloat(w.dataset, path, layer.name);
    }
    for (const layer of targets) {
      const values = layers.get(layer.name)!.weights.map((w) => tf.tensor(toFloat32(w.dataset, path, layer.name), w.shape, 'float32'));
      layer.setWeights(values);
      tf.dispose(values);
    }
    const modelNames = new Set(model.layers.map((l) => l.name));
    const ignored = [...layers.values()].filter((l) => l.weights.length > 0 && !modelNames.has(l.name)).map((l) => l.name);
    return { loaded: targets.map((l) => l.name), ignored };
  } finally {
    file.close();
  }
}

const isFloat = (ds: Dataset): boolean => /^[<>|]?[fd]$/.test(String(ds.dtype));

const notFloat = (ds: Dataset, file: string, layer: string): WeightsError =>
  new WeightsError({
    code: 'WEIGHTS_FORMAT',
    message: `dataset '${ds.path}' has dtype ${JSON.stringify(ds.dtype)}, not float32 or float64`,
    file,
    layer,
    fix: 'Re-save the weights as float32.',
  });

function toFloat32(ds: Dataset, file: string, layer: string): Float32Array {
  const v = ds.value;
  if (v instanceof Float32Array) return v;
  if (v instanceof Float64Array) return Float32Array.from(v);
  throw notFloat(ds, file, layer);
}

/** Loads the resolved weights into the model's layers; a no-op report for 'none'. */
export async function loadWeights(model: tf.LayersModel, source: WeightsSource): Promise<LoadReport> {
  return source.kind === 'none' ? { loaded: [], ignored: [] } : loadKerasWeights(model, source.path);
}
