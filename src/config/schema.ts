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
