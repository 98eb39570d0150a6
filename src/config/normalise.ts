/**
 * Stage 3: turn a valid written config into a resolved one. Pure: fills every default from
 * the schema, makes relative paths absolute against the experiment file's folder, and keeps
 * one canonical form of settings that can be written two ways (frozen_blocks or
 * trainable_blocks become the sorted trainable_blocks list), so equivalent files give
 * identical configs and identical run keys.
 */
import { dirname, isAbsolute, resolve } from 'node:path';
import type { ExperimentFile, ResolvedExperiment } from './types.gen.js';
import { defaultingValidatorFn } from './schema.js';
import { clone } from '../util/object.js';

/** A resolved config for one run: no sweep. */
export type RunConfig = Omit<ResolvedExperiment, 'sweep'>;

export function normalise(written: ExperimentFile, file: string): ResolvedExperiment {
  const out = clone(written) as unknown as Record<string, unknown>;
  delete out.extends;
  delete out.$schema;
  defaultingValidatorFn()(out);
  const model = (out.model ?? {}) as { frozen_blocks?: number; trainable_blocks?: number[] | null };
  const trainable = model.trainable_blocks ?? [1, 2, 3, 4, 5].filter((b) => b > (model.frozen_blocks ?? 4));
  model.trainable_blocks = [...trainable].sort((a, b) => a - b);
  delete model.frozen_blocks;
  const cfg = out as unknown as ResolvedExperiment;
  const base = dirname(file);
  cfg.data.path = isAbsolute(cfg.data.path) ? cfg.data.path : resolve(base, cfg.data.path);
  const w = cfg.model.weights;
  if (w !== 'imagenet' && w !== 'none' && !isAbsolute(w)) cfg.model.weights = resolve(base, w);
  return cfg;
}

/** The run config of a point: the resolved experiment without its sweep section. */
export function runConfigOf(cfg: ResolvedExperiment): RunConfig {
  const { sweep: _s, ...rest } = cfg;
  return rest;
}
