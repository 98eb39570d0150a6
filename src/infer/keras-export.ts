/**
 * Writes a trained model as a whole Keras model file (legacy HDF5, what `model.save("x.h5")`
 * writes): the architecture in the `model_config` attribute, the weights under
 * `model_weights/<layer>/<layer>/<weight>:0` with `layer_names` and `weight_names`, written
 * with h5wasm. `keras.models.load_model(path)` opens it (Keras 2 and Keras 3), and the file
 * also carries exp's metadata (tags, thresholds, image size, preprocessing) so a consumer
 * needs nothing else.
 *
 * The architecture is written from the model's own description (tfjs-layers writes Keras's
 * JSON format), with what Keras would not know removed: exp's seeded dropout becomes Keras's
 * Dropout (identical at inference), initializers become plain ones (the weights replace them).
 */
import { closeSync, openSync, readSync } from 'node:fs';
import type * as tf from '@tensorflow/tfjs';
import h5wasm from 'h5wasm/node';
import type { Group } from 'h5wasm/node';
import { fromSystemError, ModelUseError } from '../errors.js';
import type { ExportMetadata } from './metadata.js';
import type { Json } from '../util/object.js';

/** The Keras version the config is written for: the JSON format Keras 2.x reads, and Keras 3's legacy loader too. */
const KERAS_VERSION = '2.13.1';

/** The model's architecture as Keras's JSON, with tfjs-only parts replaced by Keras equivalents. */
export function kerasConfig(model: tf.LayersModel): { [k: string]: Json } {
  const topo = model.toJSON(null, false) as unknown as { [k: string]: Json };
  const fix = (node: Json): Json => {
    if (Array.isArray(node)) return node.map(fix);
    if (node === null || typeof node !== 'object') return node;
    const out: { [k: string]: Json } = {};
    for (const [k, v] of Object.entries(node)) {
      if (k.endsWith('_initializer') && v && typeof v === 'object') out[k] = { class_name: k.startsWith('bias') ? 'Zeros' : 'GlorotUniform', config: {} };
      else out[k] = fix(v);
    }
    if (out.class_name === 'SeededDropout') {
      const cfg = out.config as { [k: string]: Json };
      return {
        ...out,
        class_name: 'Dropout',
        config: { name: cfg.name!, trainable: cfg.trainable ?? true, dtype: 'float32', rate: cfg.rate!, noise_shape: null, seed: null },
      };
    }
    if (out.class_name === 'Model') out.class_name = 'Functional';
    return out;
  };
  return fix(topo) as { [k: string]: Json };
}

function setStrings(group: Group, attr: string, names: readonly string[]): void {
  // Keras (h5py) writes a layer without weights as an empty float64 array, names as fixed-length bytes.
  if (names.length === 0) {
    group.create_attribute(attr, new Float64Array(0), [0]);
    return;
  }
  group.create_attribute(attr, [...names], null, `A${Math.max(...names.map((n) => n.length))}`);
}

/** Writes `model` (its current weights, all of them) to `path` as a Keras HDF5 model file. */
export async function writeKerasModel(model: tf.LayersModel, path: string, meta: ExportMetadata): Promise<void> {
  await h5wasm.ready;
  let file: InstanceType<typeof h5wasm.File> | undefined;
  try {
    file = new h5wasm.File(path, 'w');
    file.create_attribute('model_config', JSON.stringify(kerasConfig(model)));
    file.create_attribute('keras_version', KERAS_VERSION);
    file.create_attribute('backend', 'tensorflow');
    file.create_attribute('exp_metadata', JSON.stringify(meta));
    const root = file.create_group('model_weights');
    setStrings(
      root,
      'layer_names',
      model.layers.map((l) => l.name),
    );
    root.create_attribute('keras_version', KERAS_VERSION);
    root.create_attribute('backend', 'tensorflow');
    for (const layer of model.layers) {
      const g = root.create_group(layer.name);
      const weights = layer.weights;
      // Keras 2 names: <layer>/<weight>:0 (kernel, bias), stored in a sub-group named after the layer.
      const names = weights.map((w) => `${layer.name}/${w.originalName.split('/').at(-1)}:0`);
      setStrings(g, 'weight_names', names);
      if (weights.length === 0) continue;
      const sub = g.create_group(layer.name);
      for (const [i, w] of weights.entries()) {
        const values = (await w.read().data()) as Float32Array;
        sub.create_dataset({ name: names[i]!.split('/')[1]!, data: values, shape: [...w.shape] as number[] });
      }
    }
  } catch (e) {
    throw (
      fromSystemError(e, path) ??
      new ModelUseError({
        code: 'EXPORT_FAILED',
        message: `could not write the Keras model file ${path}: ${(e as Error).message}`,
        fix: 'check that the folder can be written and has space',
        exit: 'failed',
      })
    );
  } finally {
    file?.close();
  }
}

const HDF5_SIGNATURE = Buffer.from([0x89, 0x48, 0x44, 0x46, 0x0d, 0x0a, 0x1a, 0x0a]);

/** Whether `path` is a Keras file exp export wrote (HDF5 with exp's `exp_metadata` attribute): the only kind --out replaces without --force. */
export async function isExpKerasFile(path: string): Promise<boolean> {
  const fd = openSync(path, 'r');
  const head = Buffer.alloc(8);
  try {
    // h5wasm prints HDF5's error stack for a file that is not HDF5, so look at the signature first.
    if (readSync(fd, head, 0, 8, 0) !== 8 || !head.equals(HDF5_SIGNATURE)) return false;
  } finally {
    closeSync(fd);
  }
  await h5wasm.ready;
  const file = new h5wasm.File(path, 'r');
  try {
    return file.file_id >= 0n && 'exp_metadata' in file.attrs;
  } finally {
    file.close();
  }
}
