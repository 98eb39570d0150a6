/**
 * Writes HDF5 files in the layout of Keras 2's save_weights (and of the ImageNet VGG16 file),
 * with h5wasm, so the loader is tested on real HDF5 without the 59 MB download. Like Keras
 * (h5py), names are fixed-length byte strings and a layer without weights has an empty
 * float64 `weight_names`.
 */
import h5wasm from 'h5wasm/node';
import type { Group } from 'h5wasm/node';
import { VGG16_BLOCKS } from '../../src/model/vgg16.js';

export interface FixtureWeight {
  /** Dataset name inside the layer's group, e.g. block1_conv1_W_1:0. */
  name: string;
  shape: number[];
  /** Value at flat (row-major) index i. */
  value: (i: number) => number;
  /** Stored as float32 unless said otherwise. */
  dtype?: 'int32';
}

export interface FixtureLayer {
  name: string;
  weights: FixtureWeight[];
}

export interface WriteOptions {
  /** Split layer_names into this many chunks layer_names0, layer_names1, ... (as Keras does past 64 KiB). */
  chunks?: number;
  /** Put everything under model_weights/, as in a Keras full-model file. */
  modelWeights?: boolean;
}

const size = (shape: readonly number[]): number => shape.reduce((a, b) => a * b, 1);

/** The recognisable value of a fixture weight: layer index * 1000 + flat index, + 0.5 for biases. */
export const fixtureValue =
  (layerIndex: number, isBias: boolean) =>
  (i: number): number =>
    layerIndex * 1000 + i + (isBias ? 0.5 : 0);

/** Every layer of Keras's VGG16 no-top, pools included (no weights), with the ImageNet file's weight names. */
export function vgg16FixtureLayers(): FixtureLayer[] {
  const layers: FixtureLayer[] = [];
  let cin = 3;
  for (const { block, convs, filters } of VGG16_BLOCKS) {
    for (let c = 1; c <= convs; c++) {
      const name = `block${block}_conv${c}`;
      const li = layers.length;
      layers.push({
        name,
        weights: [
          { name: `${name}_W_1:0`, shape: [3, 3, cin, filters], value: fixtureValue(li, false) },
          { name: `${name}_b_1:0`, shape: [filters], value: fixtureValue(li, true) },
        ],
      });
      cin = filters;
    }
    layers.push({ name: `block${block}_pool`, weights: [] });
  }
  return layers;
}

function setNames(group: Group, attr: string, names: readonly string[], chunks = 1): void {
  if (names.length === 0) {
    group.create_attribute(attr, new Float64Array(0), [0]);
    return;
  }
  const width = Math.max(...names.map((n) => n.length));
  const per = Math.ceil(names.length / chunks);
  for (let c = 0; c < chunks; c++) {
    const part = names.slice(c * per, (c + 1) * per);
    group.create_attribute(chunks === 1 ? attr : `${attr}${c}`, part, null, `A${width}`);
  }
}

/** Writes `layers` to `path` in Keras's HDF5 weights layout. */
export async function writeKerasH5(path: string, layers: readonly FixtureLayer[], opts: WriteOptions = {}): Promise<void> {
  await h5wasm.ready;
  const file = new h5wasm.File(path, 'w');
  try {
    const root: Group = opts.modelWeights ? file.create_group('model_weights') : file;
    setNames(
      root,
      'layer_names',
      layers.map((l) => l.name),
      opts.chunks,
    );
    for (const layer of layers) {
      const g = root.create_group(layer.name);
      setNames(
        g,
        'weight_names',
        layer.weights.map((w) => w.name),
      );
      for (const w of layer.weights) {
        const data = w.dtype === 'int32' ? new Int32Array(size(w.shape)) : new Float32Array(size(w.shape));
        for (let i = 0; i < data.length; i++) data[i] = w.value(i);
        g.create_dataset({ name: w.name, data, shape: w.shape });
      }
    }
  } finally {
    file.close();
  }
}
