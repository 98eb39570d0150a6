/**
 * An ensemble as one model: the members' layers side by side (each renamed m<i>_<name>), fed
 * by one shared input, their outputs averaged by an Average layer. It is a plain functional
 * model, so exp export writes it like a single run's model (Keras HDF5 or TensorFlow.js) and a
 * consumer loads one file and gets the ensemble's probabilities.
 */
import * as tf from '@tensorflow/tfjs';
import type { Json } from '../util/object.js';

type Node = { [k: string]: Json };
interface LayerJson {
  name: string;
  class_name: string;
  config: Node;
  inbound_nodes: Json[];
}
interface Topology {
  class_name: string;
  config: { name: string; layers: LayerJson[]; input_layers: [string, number, number][]; output_layers: [string, number, number][] };
}

/** Renames the layer references in inbound nodes ([[name, node, tensor, kwargs], ...]). */
const renameInbound = (nodes: Json[], rename: (n: string) => string): Json[] =>
  nodes.map((node) =>
    (node as Json[]).map((ref) => {
      const [n, ...rest] = ref as Json[];
      return [rename(n as string), ...rest];
    }),
  );

/** The topology of the averaged model of `models` (all with one input and one output, the same shapes). */
export function combinedTopology(models: readonly tf.LayersModel[]): Topology {
  const tops = models.map((m) => m.toJSON(null, false) as unknown as Topology);
  const first = tops[0]!.config;
  const input = first.layers.find((l) => l.name === first.input_layers[0]![0])!;
  const layers: LayerJson[] = [structuredClone(input)];
  const outputs: string[] = [];
  tops.forEach((t, i) => {
    const inName = t.config.input_layers[0]![0];
    const rename = (n: string): string => (n === inName ? input.name : `m${i}_${n}`);
    for (const l of t.config.layers) {
      if (l.name === inName) continue;
      layers.push({ ...l, name: rename(l.name), config: { ...l.config, name: rename(l.name) }, inbound_nodes: renameInbound(l.inbound_nodes, rename) });
    }
    outputs.push(rename(t.config.output_layers[0]![0]));
  });
  layers.push({
    name: 'ensemble_mean',
    class_name: 'Average',
    config: { name: 'ensemble_mean', trainable: false, dtype: 'float32' },
    inbound_nodes: [outputs.map((n) => [n, 0, 0, {}])],
  });
  return {
    class_name: tops[0]!.class_name,
    config: { name: 'ensemble', layers, input_layers: [[input.name, 0, 0]], output_layers: [['ensemble_mean', 0, 0]] },
  };
}

/** The averaged model, with the members' weights. */
export async function combineModels(models: readonly tf.LayersModel[]): Promise<tf.LayersModel> {
  const combined = await tf.models.modelFromJSON({ modelTopology: combinedTopology(models) as unknown as tf.io.ModelJSON['modelTopology'] } as tf.io.ModelJSON);
  models.forEach((m, i) => {
    for (const l of m.layers) if (l.weights.length > 0) combined.getLayer(`m${i}_${l.name}`).setWeights(l.getWeights());
  });
  return combined;
}
