/**
 * `--set path=value` overrides. Values are YAML (so `true`, `0.01`, `[1e-3, 1e-4]` and
 * `{patience: 3}` mean what they would in the file). A list on a setting that is not itself
 * a list becomes a sweep axis; a single value on a swept path fixes it and removes it from
 * the sweep; a mapping merges into the mapping that is there, as an extending file's would. Overrides apply to the merged document before validation, so they are checked
 * exactly like file values.
 */
import { parse } from 'yaml';
import { closest, type Problem } from './problem.js';
import { allPaths, schemaAt } from './schema.js';
import { flatten, getPath, isPlainObject, setPath } from '../util/object.js';
import type { Location, SourceMap } from './load.js';
import { pathId } from './load.js';

export interface Override {
  path: string;
  value: unknown;
  /** The flag as written, for error messages. */
  source: string;
}

export function parseOverrides(flags: readonly string[]): { overrides: Override[]; problems: Problem[] } {
  const overrides: Override[] = [];
  const problems: Problem[] = [];
  for (const flag of flags) {
    const source = `--set ${flag}`;
    const eq = flag.indexOf('=');
    const path = eq > 0 ? flag.slice(0, eq).trim() : '';
    const fail = (message: string): void => {
      problems.push({ code: 'OVERRIDE_SYNTAX', message, file: source, path, line: 0, col: 0 });
    };
    if (!path) {
      fail(`expected path=value, e.g. --set training.learning_rate=0.01`);
      continue;
    }
    if (!schemaAt(path)) {
      const guess = closest(path, allPaths());
      fail(`'${path}' is not a setting${guess ? `; did you mean '${guess}'?` : ''}`);
      continue;
    }
    try {
      overrides.push({ path, value: parse(flag.slice(eq + 1)) as unknown, source });
    } catch (e) {
      fail(`value is not valid YAML: ${(e as Error).message.split('\n')[0]}`);
    }
  }
  return { overrides, problems };
}

const acceptsList = (path: string): boolean => {
  const t = schemaAt(path)?.type;
  return t === 'array' || (Array.isArray(t) && t.includes('array'));
};

/** Applies overrides to a merged document (mutates it) and records where each value came from. */
export function applyOverrides(doc: Record<string, unknown>, sources: SourceMap, overrides: readonly Override[]): void {
  for (const o of overrides) {
    const at: Location = { file: o.source, value: { line: 0, col: 0 } };
    const sweep = isPlainObject(doc.sweep) ? doc.sweep : undefined;
    if (sweep) removeFromSweep(sweep, o.path);
    if (Array.isArray(o.value) && !acceptsList(o.path)) {
      const s = isPlainObject(doc.sweep) ? doc.sweep : (doc.sweep = {});
      const grid = isPlainObject(s.grid) ? s.grid : (s.grid = {});
      grid[o.path] = o.value;
      sources.set(pathId(['sweep', 'grid', o.path]), { ...at, key: at.value });
      o.value.forEach((_v, i) => sources.set(pathId(['sweep', 'grid', o.path, i]), at));
    } else if (isPlainObject(o.value) && isPlainObject(getPath(doc, o.path))) {
      // `--set training={epochs: 2}` changes epochs and keeps the other training settings,
      // as the same mapping in an extending file would.
      for (const [path, v] of Object.entries(flatten(o.value, o.path))) {
        setPath(doc, path, v);
        sources.set(pathId(path.split('.')), { ...at, key: at.value });
      }
    } else {
      setPath(doc, o.path, o.value);
      sources.set(pathId(o.path.split('.')), { ...at, key: at.value });
    }
  }
}

function removeFromSweep(sweep: Record<string, unknown>, path: string): void {
  if (isPlainObject(sweep.grid)) delete sweep.grid[path];
  if (Array.isArray(sweep.zip)) for (const g of sweep.zip) if (isPlainObject(g)) delete g[path];
  if (Array.isArray(sweep.zip)) sweep.zip = sweep.zip.filter((g) => isPlainObject(g) && Object.keys(g).length > 0);
  if (isPlainObject(sweep.random) && isPlainObject(sweep.random.params)) delete sweep.random.params[path];
  if (isPlainObject(sweep.grid) && Object.keys(sweep.grid).length === 0) delete sweep.grid;
  if (Array.isArray(sweep.zip) && sweep.zip.length === 0) delete sweep.zip;
  if (isPlainObject(sweep.random) && isPlainObject(sweep.random.params) && Object.keys(sweep.random.params).length === 0) delete sweep.random;
}
