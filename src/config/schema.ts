/**
 * The experiment JSON Schema (schemas/experiment.schema.json) is the single definition of
 * the file format. This module loads it once and answers questions about it: compile a
 * validator, find the sub-schema at a dotted path, list the keys allowed at a path.
 */
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { Ajv2020, type ValidateFunction } from 'ajv/dist/2020.js';

export type JsonSchema = {
  type?: string | string[];
  properties?: Record<string, JsonSchema>;
  additionalProperties?: boolean | JsonSchema;
  items?: JsonSchema;
  enum?: unknown[];
  default?: unknown;
  description?: string;
  required?: string[];
  [k: string]: unknown;
};

export const SCHEMA_PATH = fileURLToPath(new URL('../../schemas/experiment.schema.json', import.meta.url));
export const experimentSchema: JsonSchema = JSON.parse(readFileSync(SCHEMA_PATH, 'utf8')) as JsonSchema;

let strictValidator: ValidateFunction | undefined;
let defaultingValidator: ValidateFunction | undefined;

/** Validator that reports every problem and changes nothing. */
export function validator(): ValidateFunction {
  strictValidator ??= new Ajv2020({ allErrors: true, strict: false }).compile(experimentSchema);
  return strictValidator;
}

/** Validator that fills in defaults (mutates its input); used by normalise on valid input only. */
export function defaultingValidatorFn(): ValidateFunction {
  defaultingValidator ??= new Ajv2020({ allErrors: true, strict: false, useDefaults: true }).compile(experimentSchema);
  return defaultingValidator;
}

/** Settings that a sweep may vary: config paths, not the sweep itself or file plumbing. */
const NOT_SWEEPABLE = new Set(['sweep', 'extends', '$schema', 'name']);

/** The sub-schema at a dotted path (e.g. `training.learning_rate`), or undefined. */
export function schemaAt(dotted: string, root: JsonSchema = experimentSchema): JsonSchema | undefined {
  const parts = dotted.split('.');
  if (parts.length === 0 || NOT_SWEEPABLE.has(parts[0]!)) return undefined;
  let node: JsonSchema | undefined = root;
  for (const part of parts) {
    // Own properties only: `training.__proto__` is not a setting (it would reach Object.prototype).
    node = node?.properties && Object.hasOwn(node.properties, part) ? node.properties[part] : undefined;
    if (!node) return undefined;
  }
  return node;
}

/** Every dotted path to a leaf or section of the schema (for "did you mean" on sweep paths). */
export function allPaths(root: JsonSchema = experimentSchema, prefix = ''): string[] {
  const out: string[] = [];
  for (const [k, v] of Object.entries(root.properties ?? {})) {
    if (!prefix && NOT_SWEEPABLE.has(k)) continue;
    const p = prefix ? `${prefix}.${k}` : k;
    out.push(p, ...allPaths(v, p));
  }
  return out;
}

/** Keys allowed in the mapping at schema path `segments` (for unknown-key suggestions). */
export function keysAt(segments: readonly (string | number)[], root: JsonSchema = experimentSchema): string[] {
  let node: JsonSchema | undefined = root;
  for (const s of segments) {
    if (typeof s === 'number') node = node?.items;
    else node = node?.properties?.[s] ?? (typeof node?.additionalProperties === 'object' ? node.additionalProperties : undefined);
  }
  return Object.keys(node?.properties ?? {});
}

export const USER_CONFIG_SCHEMA_PATH = fileURLToPath(new URL('../../schemas/user-config.schema.json', import.meta.url));
/** The user config file's schema (schemas/user-config.schema.json): its `launcher` is a $ref to the experiment schema's. */
export const userConfigSchema: JsonSchema = JSON.parse(readFileSync(USER_CONFIG_SCHEMA_PATH, 'utf8')) as JsonSchema;

/**
 * `schema` with every `$ref` into experiment.schema.json replaced by the sub-schema it names, so
 * the walks of this module (keysAt for did-you-mean, the type generator) see one plain tree.
 */
export function inlineRefs(schema: JsonSchema): JsonSchema {
  const walk = (node: unknown): unknown => {
    if (Array.isArray(node)) return node.map(walk);
    if (node === null || typeof node !== 'object') return node;
    const ref = (node as JsonSchema).$ref;
    if (typeof ref === 'string') {
      const m = /^experiment\.schema\.json#(\/.*)?$/.exec(ref);
      if (!m) throw new Error(`unsupported $ref ${ref}`);
      let target: unknown = experimentSchema;
      for (const part of (m[1] ?? '').split('/').slice(1)) target = (target as Record<string, unknown>)[part.replace(/~1/g, '/').replace(/~0/g, '~')];
      if (target === undefined) throw new Error(`$ref ${ref} names nothing in the experiment schema`);
      return walk(target);
    }
    return Object.fromEntries(Object.entries(node).map(([k, v]) => [k, walk(v)]));
  };
  return walk(schema) as JsonSchema;
}

let userValidator: ValidateFunction | undefined;
/** Validator of a user config file (reports every problem, changes nothing); the $ref resolves to the experiment schema itself. */
export function userConfigValidator(): ValidateFunction {
  if (!userValidator) {
    const ajv = new Ajv2020({ allErrors: true, strict: false });
    ajv.addSchema(experimentSchema);
    userValidator = ajv.compile(userConfigSchema);
  }
  return userValidator;
}

const subValidators = new Map<string, ValidateFunction>();
/** A validator for the value at a dotted path; used to check sweep values and --set values. */
export function validatorAt(dotted: string): ValidateFunction | undefined {
  const sub = schemaAt(dotted);
  if (!sub) return undefined;
  let v = subValidators.get(dotted);
  if (!v) {
    v = new Ajv2020({ allErrors: true, strict: false }).compile({ ...sub, default: undefined, $schema: undefined });
    subValidators.set(dotted, v);
  }
  return v;
}
