/**
 * MLflow's search-filter syntax over the local run store, for `exp runs --filter`, and the
 * same names for `--columns` and `--sort`: what works in `mlflow.search_runs(filter_string=
 * ...)` works here.
 *
 *   metrics.val_fbeta > 0.8 and params.model.trainable_blocks = '[5]' and tags.team = 'a'
 *   attributes.status != 'failed'    params.training.optimizer IN ('adam', 'sgd')
 *   params.data.path LIKE '%planet%'
 *
 * Clauses are joined with `and` (MLflow has no `or`); names may be quoted with backticks.
 * metrics.X is a run's result for X (see metricOf); params.X is the resolved config value at
 * the dotted path X; tags.X are `exp tag` labels; attributes are status, run_name, key, uid,
 * sweep, experiment and backend. Pure: parsing returns problems as data.
 */
import { UsageError } from '../errors.js';
import { metricOf, type RunRow } from './runs.js';

export type Entity = 'metrics' | 'params' | 'tags' | 'attributes';
export interface Field {
  entity: Entity;
  name: string;
}
type Op = '=' | '!=' | '<' | '<=' | '>' | '>=' | 'LIKE' | 'ILIKE' | 'IN' | 'NOT IN';
export interface Clause {
  field: Field;
  op: Op;
  value: string | number | (string | number)[];
}

const ENTITY: Record<string, Entity> = {
  metric: 'metrics',
  metrics: 'metrics',
  param: 'params',
  params: 'params',
  parameter: 'params',
  parameters: 'params',
  tag: 'tags',
  tags: 'tags',
  attribute: 'attributes',
  attributes: 'attributes',
  attr: 'attributes',
  run: 'attributes',
};

const bad = (filter: string, at: number, what: string): never => {
  throw new UsageError({
    code: 'BAD_OPTION_VALUE',
    message: `--filter: ${what} at position ${at + 1}: ${filter.slice(0, at)}⟨here⟩${filter.slice(at)}`,
    fix: "write clauses like metrics.val_fbeta > 0.8 and params.training.optimizer = 'adam' (MLflow's search syntax; 'and' only)",
  });
};

/** Tokens: quoted strings, backticked names, numbers, operators, parentheses, commas, words. */
function tokenize(s: string): { t: string; kind: 'str' | 'num' | 'op' | 'word' | 'punct'; at: number }[] {
  const out: { t: string; kind: 'str' | 'num' | 'op' | 'word' | 'punct'; at: number }[] = [];
  let i = 0;
  while (i < s.length) {
    const c = s[i]!;
    if (/\s/.test(c)) {
      i++;
      continue;
    }
    if (c === "'" || c === '"') {
      let j = i + 1;
      let v = '';
      while (j < s.length && s[j] !== c) {
        if (s[j] === '\\' && j + 1 < s.length) j++;
        v += s[j];
        j++;
      }
      if (j >= s.length) bad(s, i, 'unterminated string');
      out.push({ t: v, kind: 'str', at: i });
      i = j + 1;
    } else if (/[<>=!]/.test(c)) {
      const two = s.slice(i, i + 2);
      const op = ['<=', '>=', '!=', '=='].includes(two) ? two : c;
      if (op === '!') bad(s, i, "'!' must be '!='");
      out.push({ t: op === '==' ? '=' : op, kind: 'op', at: i });
      i += op.length;
    } else if (c === '(' || c === ')' || c === ',') {
      out.push({ t: c, kind: 'punct', at: i });
      i++;
    } else {
      // A word: an identifier (with dots and backticked parts) or a number.
      let j = i;
      while (j < s.length && !/[\s<>=!(),'"]/.test(s[j]!)) {
        if (s[j] === '`') {
          const k = s.indexOf('`', j + 1);
          if (k < 0) bad(s, j, 'unterminated `name`');
          j = k + 1;
        } else j++;
      }
      const w = s.slice(i, j);
      out.push({ t: w, kind: /^[+-]?(\d+\.?\d*|\.\d+)(e[+-]?\d+)?$/i.test(w) ? 'num' : 'word', at: i });
      i = j;
    }
  }
  return out;
}

/** Parses `entity.name` (name may hold dots, or be backticked). */
export function parseField(word: string): Field | undefined {
  const dot = word.indexOf('.');
  if (dot < 0) return undefined;
  const entity = ENTITY[word.slice(0, dot).toLowerCase()];
  const name = word.slice(dot + 1).replace(/^`(.*)`$/, '$1');
  return entity && name ? { entity, name } : undefined;
}

/** Parses a filter string into clauses (joined by AND); a malformed filter is a usage error that shows where. */
export function parseFilter(filter: string): Clause[] {
  const toks = tokenize(filter);
  const clauses: Clause[] = [];
  let i = 0;
  const end = filter.length;
  while (i < toks.length) {
    const f = toks[i];
    const field = f?.kind === 'word' ? parseField(f.t) : undefined;
    if (!field) bad(filter, f?.at ?? end, `expected metrics.NAME, params.NAME, tags.NAME or attributes.NAME${f ? `, found '${f.t}'` : ''}`);
    i++;
    let op: Op | undefined;
    const o = toks[i];
    if (o?.kind === 'op') op = o.t as Op;
    else if (o?.kind === 'word' && /^(like|ilike|in)$/i.test(o.t)) op = o.t.toUpperCase() as Op;
    else if (o?.kind === 'word' && /^not$/i.test(o.t) && /^in$/i.test(toks[i + 1]?.t ?? '')) {
      op = 'NOT IN';
      i++;
    }
    if (!op) bad(filter, o?.at ?? end, 'expected a comparison (=, !=, <, <=, >, >=, LIKE, ILIKE, IN, NOT IN)');
    i++;
    let value: Clause['value'];
    if (op === 'IN' || op === 'NOT IN') {
      if (toks[i]?.t !== '(') bad(filter, toks[i]?.at ?? end, 'expected ( after IN');
      i++;
      const list: (string | number)[] = [];
      while (toks[i] && toks[i]!.t !== ')') {
        const v = toks[i]!;
        if (v.kind !== 'str' && v.kind !== 'num') bad(filter, v.at, 'expected a value in the list');
        list.push(v.kind === 'num' ? Number(v.t) : v.t);
        i++;
        if (toks[i]?.t === ',') i++;
      }
      if (toks[i]?.t !== ')') bad(filter, end, 'expected ) to close the list');
      i++;
      value = list;
    } else {
      const v = toks[i];
      if (!v || (v.kind !== 'str' && v.kind !== 'num')) bad(filter, v?.at ?? end, "expected a value: a number or a 'quoted string'");
      value = v!.kind === 'num' ? Number(v!.t) : v!.t;
      i++;
    }
    clauses.push({ field: field!, op: op!, value });
    if (i < toks.length) {
      if (!/^and$/i.test(toks[i]!.t))
        bad(filter, toks[i]!.at, `expected 'and'${/^or$/i.test(toks[i]!.t) ? " (MLflow's syntax has no 'or'; use IN (...) for alternatives)" : ''}`);
      i++;
    }
  }
  return clauses;
}

/** The value a row has for a field; `param` reads the run's resolved config (lazily). */
export function fieldValue(row: RunRow, f: Field, param: (row: RunRow, path: string) => unknown): unknown {
  switch (f.entity) {
    case 'metrics':
      return metricOf(row, f.name);
    case 'params':
      return param(row, f.name);
    case 'tags':
      return row.tags[f.name];
    case 'attributes': {
      const attrs: Record<string, unknown> = {
        status: row.status,
        run_name: row.name,
        name: row.name,
        key: row.key,
        uid: row.uid,
        run_id: row.uid,
        sweep: row.sweep,
        experiment: row.experiment,
        backend: row.backend,
        duration: row.duration_s,
        epochs: row.epochs_done,
        reason: row.reason,
      };
      return attrs[f.name];
    }
  }
}

const likeRegex = (pattern: string, flags: string): RegExp =>
  new RegExp(
    `^${pattern
      .split('')
      .map((c) => (c === '%' ? '.*' : c === '_' ? '.' : c.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')))
      .join('')}$`,
    flags,
  );

/** Params and tags are strings in MLflow; a number literal still matches the number it spells. */
const asText = (v: unknown): string => (typeof v === 'string' ? v : JSON.stringify(v));

function compare(actual: unknown, op: Op, value: Clause['value']): boolean {
  if (actual === undefined || actual === null) return op === '!=' || op === 'NOT IN';
  if (op === 'IN' || op === 'NOT IN') {
    const hit = (value as (string | number)[]).some((v) => asText(actual) === asText(v) || (typeof actual === 'number' && actual === Number(v)));
    return op === 'IN' ? hit : !hit;
  }
  if (op === 'LIKE' || op === 'ILIKE') return likeRegex(String(value), op === 'ILIKE' ? 'i' : '').test(asText(actual));
  const a = typeof actual === 'number' ? actual : Number(asText(actual));
  const b = typeof value === 'number' ? value : Number(value);
  if (op === '=' || op === '!=') {
    const eq = asText(actual) === asText(value) || (Number.isFinite(a) && Number.isFinite(b) && a === b);
    return op === '=' ? eq : !eq;
  }
  if (!Number.isFinite(a) || !Number.isFinite(b)) {
    const x = asText(actual),
      y = String(value);
    return op === '<' ? x < y : op === '<=' ? x <= y : op === '>' ? x > y : x >= y;
  }
  return op === '<' ? a < b : op === '<=' ? a <= b : op === '>' ? a > b : a >= b;
}

/** Whether a row passes every clause. */
export const matches = (row: RunRow, clauses: readonly Clause[], param: (row: RunRow, path: string) => unknown): boolean =>
  clauses.every((c) => compare(fieldValue(row, c.field, param), c.op, c.value));
