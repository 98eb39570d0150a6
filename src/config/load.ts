/**
 * Stage 1: read an experiment file (and the files it `extends`) into a plain value plus a
 * source map from each path in the value to where it was written. Parsing is pure: the only
 * IO is the `readText` callback, so tests and the CLI share the code.
 */
import { dirname, resolve } from 'node:path';
import { isMap, isScalar, isSeq, LineCounter, parseDocument, type Node, type YAMLError } from 'yaml';
import type { Position, Problem } from './problem.js';
import { findMisindented, INDENT_ERROR_CODES } from './yaml-indent.js';

/** Where one value (and its key, if it sits in a mapping) was written. */
export interface Location {
  file: string;
  value: Position;
  key?: Position;
}

/** Path segments: mapping keys and sequence indices. */
export type PathSegments = readonly (string | number)[];

/** Map from a path (segments joined by NUL, since keys may hold dots) to its location. */
export type SourceMap = Map<string, Location>;
export const pathId = (segments: PathSegments): string => segments.join('\u0000');

export interface LoadResult {
  /** The merged document (base files first, this file's keys winning). */
  value: unknown;
  sources: SourceMap;
  /** Text of every file read, for rendering excerpts. */
  texts: Map<string, string>;
  problems: Problem[];
}

/** Reads a file's text; undefined when it does not exist; may throw an ExpError for a file that cannot be read (reported as a problem). */
export type ReadText = (path: string) => string | undefined;

/** Parses one YAML text, collecting syntax and duplicate-key problems with positions. */
export function parseYaml(file: string, text: string): { value: unknown; sources: SourceMap; problems: Problem[] } {
  const lineCounter = new LineCounter();
  const doc = parseDocument(text, { lineCounter, uniqueKeys: true, prettyErrors: false, keepSourceTokens: false });
  const problems: Problem[] = [];
  const at = (offset: number): Position => {
    const { line, col } = lineCounter.linePos(offset);
    return { line, col };
  };
  const indent = indentProblem(file, text, doc.errors, at);
  if (indent) return { value: undefined, sources: new Map(), problems: [indent] };
  for (const err of doc.errors) {
    const code = err.code === 'DUPLICATE_KEY' ? 'DUPLICATE_KEY' : 'YAML_SYNTAX';
    const pos = at(err.pos[0]);
    const message =
      code === 'DUPLICATE_KEY'
        ? 'duplicate key: this key is already set earlier in the same mapping; remove one of them'
        : `YAML syntax error: ${err.message.split('\n')[0]}`;
    problems.push({ code, message, file, path: '', ...pos });
  }
  if (problems.length > 0) return { value: undefined, sources: new Map(), problems };

  const sources: SourceMap = new Map();
  const walk = (node: Node | null | undefined, path: (string | number)[], key?: Position): void => {
    if (!node) return;
    const start = node.range ? at(node.range[0]) : { line: 1, col: 1 };
    sources.set(pathId(path), { file, value: start, ...(key ? { key } : {}) });
    if (isMap(node)) {
      for (const pair of node.items) {
        const k = pair.key as Node | null;
        const name = isScalar(k) ? String(k.value) : String(k);
        const keyPos = k?.range ? at(k.range[0]) : start;
        if (pair.value === null) sources.set(pathId([...path, name]), { file, value: keyPos, key: keyPos });
        else walk(pair.value as Node, [...path, name], keyPos);
      }
    } else if (isSeq(node)) {
      node.items.forEach((item, i) => walk(item as Node, [...path, i]));
    }
  };
  try {
    walk(doc.contents as Node | null, []);
    return { value: doc.toJS({ maxAliasCount: 100 }), sources, problems };
  } catch (e) {
    // An alias bomb (aliases of aliases, expanding exponentially) or nesting deeper than the
    // stack: input a file can give, so a problem with a code, never a crash.
    const message = e instanceof RangeError ? 'the document is nested too deeply' : `the document cannot be expanded: ${(e as Error).message.split('\n')[0]}`;
    return {
      value: undefined,
      sources: new Map(),
      problems: [{ code: 'YAML_SYNTAX', message: `${message}; write it out plainly (no more than 100 aliases)`, file, path: '', line: 1, col: 1 }],
    };
  }
}

/**
 * One problem, at the misindented line, for the errors a misplaced indentation gives (the
 * parser reports two or three, at the line above or the value before it). The line found in
 * the text is used only near the parser's first such error (from the line written before it
 * to the one written after it); else the parser's first error alone stands for them.
 */
function indentProblem(file: string, text: string, errors: readonly YAMLError[], at: (offset: number) => Position): Problem | undefined {
  const first = errors.find((e) => INDENT_ERROR_CODES.has(e.code));
  if (!first) return undefined;
  const pos = at(first.pos[0]);
  const found = findMisindented(text);
  const lines = text.split(/\r?\n/);
  const blank = (n: number): boolean => /^\s*(#.*)?$/.test(lines[n - 1] ?? '');
  let [from, to] = [pos.line - 1, pos.line + 1];
  while (from > 1 && blank(from)) from--;
  while (to < lines.length && blank(to)) to++;
  if (found && found.seen >= from && found.seen <= to) return { code: 'YAML_SYNTAX', message: found.message, file, path: '', line: found.line, col: found.col };
  return { code: 'YAML_SYNTAX', message: `YAML syntax error: ${first.message.split('\n')[0]}`, file, path: '', ...pos };
}

const isPlainObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

/** Deep-merges `over` onto `base`: mappings merge, everything else replaces. Source maps follow. */
function merge(base: unknown, baseSrc: SourceMap, over: unknown, overSrc: SourceMap, path: string[], out: SourceMap): unknown {
  if (isPlainObject(base) && isPlainObject(over)) {
    const result: Record<string, unknown> = { ...base };
    out.set(pathId(path), overSrc.get(pathId(path)) ?? baseSrc.get(pathId(path))!);
    for (const k of Object.keys(base)) copySubtree(baseSrc, [...path, k], out);
    for (const [k, v] of Object.entries(over)) {
      if (k in base) {
        removeSubtree(out, [...path, k]);
        result[k] = merge(base[k], baseSrc, v, overSrc, [...path, k], out);
      } else {
        result[k] = v;
        copySubtree(overSrc, [...path, k], out);
      }
    }
    return result;
  }
  copySubtree(overSrc, path, out);
  return over;
}

/**
 * Deep-merges `over` onto `base` at `path` (both documents' paths start at their roots) with
 * the rule `extends` uses: mappings merge key by key, a list or a scalar replaces. Returns the
 * merged value and the source map of the subtree at `path`.
 */
export function mergeAt(base: unknown, baseSrc: SourceMap, over: unknown, overSrc: SourceMap, path: string[]): { value: unknown; sources: SourceMap } {
  const out: SourceMap = new Map();
  return { value: merge(base, baseSrc, over, overSrc, path, out), sources: out };
}

export function copySubtree(from: SourceMap, path: string[], to: SourceMap): void {
  const prefix = pathId(path);
  for (const [k, v] of from) if (k === prefix || k.startsWith(prefix + '\u0000')) to.set(k, v);
}
export function removeSubtree(map: SourceMap, path: string[]): void {
  const prefix = pathId(path);
  for (const k of [...map.keys()]) if (k === prefix || k.startsWith(prefix + '\u0000')) map.delete(k);
}

/**
 * Loads `file` and follows its `extends` chain. Problems (syntax, a missing base, a cycle)
 * are returned, not thrown; the value is undefined when the file could not be read at all.
 */
export function loadExperiment(file: string, readText: ReadText): LoadResult {
  const texts = new Map<string, string>();
  const problems: Problem[] = [];

  const loadChain = (path: string, chain: string[], from?: Location): { value: unknown; sources: SourceMap } | undefined => {
    const where = from ? { file: from.file, path: 'extends', ...from.value } : { file: path, path: '', line: 0, col: 0 };
    if (chain.includes(path)) {
      const cycle = [...chain.slice(chain.indexOf(path)), path].join(' -> ');
      problems.push({
        code: 'EXTENDS_CYCLE',
        message: `extends cycle: ${cycle}; remove one of the extends keys`,
        file: from?.file ?? path,
        path: 'extends',
        ...(from?.value ?? { line: 0, col: 0 }),
      });
      return undefined;
    }
    let text: string | undefined;
    try {
      text = readText(path);
    } catch (e) {
      problems.push({
        code: from ? 'EXTENDS_MISSING' : 'FILE_NOT_FOUND',
        message: `${(e as Error).message}; ${from ? 'extends must name a regular YAML file' : 'give a regular YAML file'}`,
        ...where,
      });
      return undefined;
    }
    if (text === undefined) {
      if (from)
        problems.push({
          code: 'EXTENDS_MISSING',
          message: `extends names '${path}', which does not exist; fix the path (it is relative to the extending file)`,
          file: from.file,
          path: 'extends',
          ...from.value,
        });
      else problems.push({ code: 'FILE_NOT_FOUND', message: `cannot read '${path}': no such file`, file: path, path: '', line: 0, col: 0 });
      return undefined;
    }
    texts.set(path, text);
    const parsed = parseYaml(path, text);
    problems.push(...parsed.problems);
    if (parsed.problems.length > 0) return undefined;
    const own = parsed.value ?? {};
    if (from && !isPlainObject(own)) {
      problems.push({
        code: 'EXTENDS_MISSING',
        message: `extends names '${path}', whose top level is ${Array.isArray(own) ? 'a list' : `a ${typeof own}`}, not a mapping of settings; extends must name an experiment file`,
        ...where,
      });
      return undefined;
    }
    if (isPlainObject(own) && typeof own.extends === 'string') {
      const basePath = resolve(dirname(path), own.extends);
      const base = loadChain(basePath, [...chain, path], parsed.sources.get(pathId(['extends'])));
      if (!base) return undefined;
      const { extends: _ignored, ...rest } = own;
      const restSources: SourceMap = new Map([...parsed.sources].filter(([k]) => k !== 'extends' && !k.startsWith('extends\u0000')));
      const out: SourceMap = new Map();
      const baseValue = isPlainObject(base.value) ? (({ extends: _e, ...r }) => r)(base.value) : base.value;
      return { value: merge(baseValue, base.sources, rest, restSources, [], out), sources: out };
    }
    return { value: own, sources: parsed.sources };
  };

  const loaded = loadChain(resolve(file), []);
  return { value: loaded?.value, sources: loaded?.sources ?? new Map(), texts, problems };
}
