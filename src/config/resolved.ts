/**
 * The resolved form of the experiment schema: what normalise produces and what a run folder's
 * config.yaml holds. It is derived from schemas/experiment.schema.json, never written twice:
 * every property with a default becomes required, and a property may say how its resolved
 * form differs with `x-resolved` (false: it does not exist once resolved, e.g. frozen_blocks,
 * which normalise folds into trainable_blocks; an object: keywords that replace the written
 * ones, e.g. trainable_blocks is always a list). scripts/gen-types.ts builds the
 * ResolvedExperiment type from the same function.
 */
import { Ajv2020, type ValidateFunction } from 'ajv/dist/2020.js';
import type { SourceMap } from './load.js';
import type { Problem } from './problem.js';
import { experimentSchema, type JsonSchema } from './schema.js';
import { validateWith } from './validate.js';

/** Sections of an experiment file that a single run's config does not have. */
export const NOT_IN_RUN_CONFIG = ['sweep', 'extends', '$schema'] as const;

function resolve(node: JsonSchema): JsonSchema {
  const out: JsonSchema = { ...node };
  if (node.properties) {
    const props: Record<string, JsonSchema> = {};
    for (const [k, v] of Object.entries(node.properties)) {
      const x = v['x-resolved'];
      if (x === false) continue;
      props[k] = resolve(typeof x === 'object' && x !== null ? { ...v, ...(x as JsonSchema) } : v);
      delete props[k]['x-resolved'];
    }
    out.properties = props;
    const withDefault = Object.entries(props)
      .filter(([, v]) => 'default' in v)
      .map(([k]) => k);
    out.required = [...new Set([...(node.required ?? []).filter((k) => k in props), ...withDefault])];
  }
  for (const key of ['items', 'additionalProperties'] as const) {
    const sub = node[key];
    if (sub && typeof sub === 'object') out[key] = resolve(sub as JsonSchema);
  }
  return out;
}

/** The resolved experiment (sweep section included): the source of the ResolvedExperiment type. */
export function resolvedExperimentSchema(root: JsonSchema = experimentSchema): JsonSchema {
  const s = resolve(root);
  const props = { ...s.properties };
  delete props.extends;
  delete props.$schema;
  return { ...s, properties: props, required: (s.required ?? []).filter((k) => k in props) };
}

/** One run's resolved config, as config.yaml holds it. */
export function runConfigSchema(root: JsonSchema = experimentSchema): JsonSchema {
  const s = resolvedExperimentSchema(root);
  const props = { ...s.properties };
  for (const k of NOT_IN_RUN_CONFIG) delete props[k];
  return { ...s, properties: props, required: (s.required ?? []).filter((k) => k in props) };
}

let runValidator: ValidateFunction | undefined;

/**
 * Checks a run config (e.g. a parsed config.yaml) against the resolved schema; all problems,
 * with positions. A setting added to the schema after the folder was written takes its default
 * (filled into `value`), so run folders of an older exp stay readable: every setting has one.
 */
export function validateResolved(value: unknown, sources: SourceMap, file: string): Problem[] {
  const schema = runConfigSchema();
  runValidator ??= new Ajv2020({ allErrors: true, strict: false, useDefaults: true }).compile(schema);
  return validateWith(runValidator, schema, value, sources, file);
}
