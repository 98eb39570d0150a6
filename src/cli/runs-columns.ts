/**
 * The columns of `exp runs`. Without --columns, the standard table; with it, exactly the
 * columns named, in that order, spelt as the table's headers show them (name, status,
 * val_fbeta), as a metric or setting alone (val_micro_fbeta, training.learning_rate,
 * learning_rate) or in MLflow's form (metrics.X, params.X, tags.X, attributes.X). A name that is
 * none of these is a usage error that lists the spellings.
 */
import { UsageError } from '../errors.js';
import { closest } from '../config/problem.js';
import { resolvedExperimentSchema } from '../config/resolved.js';
import { allPaths } from '../config/schema.js';
import { settingsNamed } from './setting-hint.js';
import { formatValue, metricCell } from '../query/cells.js';
import { metricOf, paramOf, type RunRow } from '../query/runs.js';
import { fieldValue, parseField, type Field } from '../query/filter.js';

export interface Column {
  header: string;
  /** The value `--json` gives under `columns`. */
  value(r: RunRow): unknown;
  cell(r: RunRow): string;
}

/** 75 -> "1m15s"; 3725 -> "1h02m"; null -> "". */
export function formatDuration(s: number | null): string {
  if (s === null || !Number.isFinite(s)) return '';
  if (s < 60) return `${s.toFixed(1)}s`;
  const m = Math.floor(s / 60);
  if (m < 60) return `${m}m${String(Math.round(s % 60)).padStart(2, '0')}s`;
  return `${Math.floor(m / 60)}h${String(m % 60).padStart(2, '0')}m`;
}

export { metricCell };

const plain = (header: string, value: (r: RunRow) => unknown, cell?: (r: RunRow) => string): Column => ({
  header,
  value,
  cell: cell ?? ((r) => String(value(r) ?? '')),
});

/** The standard table, with the other names each column answers to (attributes.X included). */
const STANDARD: readonly { column: Column; names: readonly string[] }[] = [
  { column: plain('experiment', (r) => r.experiment), names: ['experiment'] },
  { column: plain('sweep', (r) => r.sweep), names: ['sweep'] },
  { column: plain('run', (r) => r.name), names: ['run', 'name', 'run_name'] },
  { column: plain('key', (r) => r.key), names: ['key'] },
  {
    column: plain(
      'status',
      (r) => r.status,
      (r) => (r.error ? `${r.status} (unreadable)` : r.status),
    ),
    names: ['status'],
  },
  {
    column: plain(
      'epochs',
      (r) => r.epochs_done,
      (r) => `${r.epochs_done}/${r.epochs_planned ?? '?'}`,
    ),
    names: ['epochs'],
  },
  { column: plain('best epoch', (r) => r.best?.epoch ?? null), names: ['best_epoch', 'epoch'] },
  {
    column: plain(
      'monitored',
      (r) => (r.best ? metricOf(r, r.monitor) : null),
      (r) => (r.best ? `${r.monitor}=${metricCell(metricOf(r, r.monitor))}` : ''),
    ),
    names: ['monitor'],
  },
  {
    column: plain(
      'val_loss',
      (r) => metricOf(r, 'val_loss') ?? null,
      (r) => metricCell(metricOf(r, 'val_loss')),
    ),
    names: [],
  },
  {
    column: plain(
      'val_fbeta',
      (r) => metricOf(r, 'val_fbeta') ?? null,
      (r) => metricCell(metricOf(r, 'val_fbeta')),
    ),
    names: [],
  },
  { column: plain('backend', (r) => r.backend), names: ['backend'] },
  {
    column: plain(
      'duration',
      (r) => r.duration_s,
      (r) => formatDuration(r.duration_s),
    ),
    names: ['duration', 'duration_s'],
  },
];

export const STANDARD_COLUMNS: readonly Column[] = STANDARD.map((s) => s.column);

/** Why a pruned run was stopped (run.json's reason), in the standard table when a run was pruned. */
const NOTE_COLUMN: Column = plain(
  'note',
  (r) => (r.status === 'pruned' ? r.reason : null),
  (r) => (r.status === 'pruned' ? (r.reason ?? '') : ''),
);

/** Attributes with no standard column of their own. */
const OTHER_ATTRIBUTES = ['uid', 'run_id', 'reason'];

/** The names exp records a run's results under (and their best_/final_ forms), whether or not a run has them yet. */
const METRIC = /^(final_|best_)?(val_)?(loss|fbeta|micro_fbeta|macro_fbeta)$|^final_val_fbeta_(tuned|tuned_heldout|tta)$|^baseline$/;

const norm = (s: string): string =>
  s
    .trim()
    .toLowerCase()
    .replace(/[\s-]+/g, '_');

function fieldColumn(header: string, f: Field): Column {
  const value = (r: RunRow): unknown => fieldValue(r, f, paramOf) ?? null;
  return { header, value, cell: (r) => (value(r) === null ? '' : formatValue(value(r))) };
}

/** What a name given to --columns can mean, given the rows (their metrics and swept settings) and the config's settings. */
class Names {
  private readonly metrics: Set<string>;
  private readonly settings: string[];

  constructor(rows: readonly RunRow[]) {
    const seen = rows.flatMap((r) => [...Object.keys(r.best?.metrics ?? {}), ...Object.keys(r.final ?? {}).map((k) => `final_${k}`)]);
    this.metrics = new Set(seen);
    const paths = allPaths(resolvedExperimentSchema());
    const leaves = paths.filter((p) => !paths.some((q) => q.startsWith(`${p}.`)));
    this.settings = [...new Set([...leaves, ...rows.flatMap((r) => Object.keys(r.params))])];
  }

  isMetric = (m: string): boolean => METRIC.test(m) || this.metrics.has(m) || this.metrics.has(`final_${m}`);

  /** The settings a name means: its whole path, else the settings whose last segment it is. */
  settingsNamed(name: string): string[] {
    if (this.settings.includes(name)) return [name];
    return this.settings.filter((p) => p.slice(p.lastIndexOf('.') + 1) === name);
  }

  /** Every spelling, for the error's "did you mean". */
  all(): string[] {
    return [...STANDARD.flatMap((s) => [s.column.header.replace(' ', '_'), ...s.names]), ...this.metrics, ...this.settings, ...OTHER_ATTRIBUTES];
  }
}

/** The likeliest spelling meant: a near miss of the name, else the setting its last segment means (training.lr -> training.learning_rate). */
function guessOf(name: string, names: Names): string | undefined {
  const bare = name.replace(/^(params|metrics|attributes|tags)\./, '');
  const all = names.all().filter((n) => n !== bare);
  return settingsNamed(bare.slice(bare.lastIndexOf('.') + 1)).find((p) => all.includes(p)) ?? closest(bare, all);
}

const unknown = (name: string, why: string, names: Names, guess = guessOf(name, names)): never => {
  throw new UsageError({
    code: 'BAD_OPTION_VALUE',
    message: `--columns: ${why}${guess ? `; did you mean '${guess}'?` : ''}`,
    fix:
      `name columns as the table's headers do (${STANDARD.map((s) => s.column.header.replace(' ', '_')).join(', ')}; run for name), ` +
      'a metric (val_micro_fbeta, final_val_fbeta, best_val_loss, baseline), a setting by its path (training.learning_rate), ' +
      'or in MLflow form: metrics.X, params.X, tags.X, attributes.X',
  });
};

/** One name given to --columns, as a column. */
function columnOf(name: string, names: Names): Column {
  const standard = STANDARD.find((s) => [s.column.header, ...s.names].some((n) => norm(n) === norm(name)));
  if (standard) return standard.column;
  const field = parseField(name);
  if (OTHER_ATTRIBUTES.includes(name)) return fieldColumn(name, { entity: 'attributes', name });
  if (field?.entity === 'tags') return fieldColumn(name, field);
  if (field?.entity === 'attributes') {
    const attr = STANDARD.find((s) => [s.column.header, ...s.names].includes(field.name));
    if (attr) return attr.column;
    if (OTHER_ATTRIBUTES.includes(field.name)) return fieldColumn(name, field);
    return unknown(name, `'${name}' is not an attribute of a run`, names);
  }
  if (field?.entity === 'metrics' && names.isMetric(field.name)) return fieldColumn(name, field);
  if (field?.entity === 'metrics') return unknown(name, `no run has a metric '${field.name}'`, names);
  const path = field?.entity === 'params' ? field.name : name;
  if (!field && names.isMetric(name)) return fieldColumn(name, { entity: 'metrics', name });
  const settings = names.settingsNamed(path);
  if (settings.length === 1) return fieldColumn(name, { entity: 'params', name: settings[0]! });
  if (settings.length > 1) return unknown(name, `'${name}' names ${settings.length} settings (${settings.join(', ')}); give the whole path`, names, '');
  return unknown(name, `no column '${name}'`, names);
}

/** The columns --columns names, in its order; the standard table without it. */
export function chooseColumns(spec: string | undefined, rows: readonly RunRow[]): readonly Column[] {
  // A pruned run's reason is the scheduler's decision with its numbers: shown as a note when some run has one.
  if (spec === undefined) return rows.some((r) => r.status === 'pruned') ? [...STANDARD_COLUMNS, NOTE_COLUMN] : STANDARD_COLUMNS;
  const given = spec
    .split(',')
    .map((c) => c.trim())
    .filter(Boolean);
  if (given.length === 0)
    throw new UsageError({
      code: 'BAD_OPTION_VALUE',
      message: `--columns: give at least one column, got '${spec}'`,
      fix: 'e.g. --columns name,status,val_fbeta',
    });
  const names = new Names(rows);
  return given.map((c) => columnOf(c, names));
}
