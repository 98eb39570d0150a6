/**
 * Writes a model as a TensorFlow.js LayersModel folder: model.json (architecture, weights
 * manifest, and exp's metadata as userDefinedMetadata) and 4 MB weight shards, the layout the
 * tfjs converter writes, so `tf.loadLayersModel('file://.../model.json')` (or an http URL)
 * loads it with plain TensorFlow.js. exp's seeded dropout is written as tfjs's Dropout.
 */
import * as tf from '@tensorflow/tfjs';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fromSystemError, ModelUseError } from '../errors.js';
import type { ExportMetadata } from './metadata.js';
import type { Json } from '../util/object.js';

const SHARD_BYTES = 4 * 1024 * 1024;

function withPlainDropout(node: Json): Json {
  if (Array.isArray(node)) return node.map(withPlainDropout);
  if (node === null || typeof node !== 'object') return node;
  const out = Object.fromEntries(Object.entries(node).map(([k, v]) => [k, withPlainDropout(v)]));
  return out.class_name === 'SeededDropout' ? { ...out, class_name: 'Dropout' } : out;
}

/** Writes `model` into folder `out` (model.json + group1-shardNofM.bin). Returns the files written. */
export async function writeTfjsModel(model: tf.LayersModel, out: string, meta: ExportMetadata, extra: Record<string, unknown> = {}): Promise<string[]> {
  const written: string[] = [];
  try {
    mkdirSync(out, { recursive: true });
    await model.save(
      tf.io.withSaveHandler(async (artifacts) => {
        const data = new Uint8Array(
          artifacts.weightData instanceof ArrayBuffer ? artifacts.weightData : tf.io.concatenateArrayBuffers(artifacts.weightData as ArrayBuffer[]),
        );
        const shards = Math.max(1, Math.ceil(data.byteLength / SHARD_BYTES));
        const paths = Array.from({ length: shards }, (_, i) => `group1-shard${i + 1}of${shards}.bin`);
        paths.forEach((p, i) => {
          writeFileSync(join(out, p), data.subarray(i * SHARD_BYTES, (i + 1) * SHARD_BYTES));
          written.push(p);
        });
        const json = {
          format: 'layers-model',
          generatedBy: `TensorFlow.js tfjs-layers v${tf.version.tfjs}`,
          convertedBy: 'exp export',
          modelTopology: withPlainDropout(artifacts.modelTopology as Json),
          weightsManifest: [{ paths, weights: artifacts.weightSpecs }],
          userDefinedMetadata: { exp: meta, ...extra },
        };
        writeFileSync(join(out, 'model.json'), JSON.stringify(json));
        written.push('model.json');
        return { modelArtifactsInfo: tf.io.getModelArtifactsInfoForJSON(artifacts) };
      }),
    );
  } catch (e) {
    throw (
      fromSystemError(e, out) ??
      new ModelUseError({
        code: 'EXPORT_FAILED',
        message: `could not write the TensorFlow.js model to ${out}: ${(e as Error).message}`,
        fix: 'check that the folder can be written and has space',
        exit: 'failed',
      })
    );
  }
  return written;
}
