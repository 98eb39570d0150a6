/**
 * Stage 3: turn a valid written config into a resolved one. Pure: fills every default from
 * the schema, makes relative paths absolute against the experiment file's folder, and
 * derives the one canonical form of settings that can be written two ways (frozen_blocks
 * vs trainable_blocks), so equivalent files give identical configs and identical run keys.
 */
import { dirname, isAbsolute, resolve } from 'node:path';
import type { ExperimentFile, ResolvedExperiment } from './types.gen.js';
import { defaultingValidatorFn } from './schema.js';
import { clone } from '../util/object.js';

/** A resolved config for one run: no sweep, no extends. */
export type RunConfig = Omit<ResolvedExperiment, 'sweep' | 'extends' | '$schema'>;

export function normalise(written: ExperimentFile, file: string): ResolvedExperiment {
  const out = clone(written) as unknown as Record<string, unknown>;
  delete out.extends;
  delete out.$schema;
  defaultingValidatorFn()(out);
  const cfg = out as unknown as ResolvedExperiment;
  const base = dirname(file);
  cfg.data.path = isAbsolute(cfg.data.path) ? cfg.data.path : resolve(base, cfg.data.path);
  const w = cfg.model.weights;
  if (w !== 'imagenet' && w !== 'none' && !isAbsolute(w)) cfg.model.weights = resolve(base, w);
  const trainable = cfg.model.trainable_blocks ?? [1, 2, 3, 4, 5].filter((b) => b > cfg.model.frozen_blocks);
  cfg.model.trainable_blocks = [...trainable].sort((a, b) => a - b);
  cfg.model.frozen_blocks = trainable.length ? Math.min(...trainable) - 1 : 5;
  return cfg;
}

/** The run config of a point: the resolved experiment without its sweep section. */
export function runConfigOf(cfg: ResolvedExperiment): RunConfig {
  const { sweep: _s, extends: _e, $schema: _d, ...rest } = cfg;
  return rest;
}
