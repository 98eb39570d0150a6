/**
 * Benchmark rows and their plain-text tables. Every figure the bench prints is a row; `--json`
 * prints the same rows as one array, each tagged with its `section`.
 */

/** A cell: numbers are rounded for the table (the JSON keeps them whole), null prints as '-'. */
export type Cell = string | number | boolean | null | undefined;

/** One result. `section` says which table it belongs to; the other keys are that table's columns. */
export interface Row {
  section: string;
  name: string;
  /** A part of the row above it: its name is indented in the table. */
  sub?: boolean;
  [key: string]: Cell | Cell[] | Record<string, Cell>;
}

export interface Column {
  key: string;
  title: string;
  /** Decimal places for numbers; default: 3 significant digits, at most 1 decimal above 100. */
  digits?: number;
  /** Number cells right-aligned (the default); text left. */
  align?: 'left' | 'right';
}

function fmt(v: Cell, digits?: number): string {
  if (v === null || v === undefined) return '-';
  if (typeof v === 'boolean') return v ? 'yes' : 'no';
  if (typeof v === 'string') return v;
  if (!Number.isFinite(v)) return String(v);
  if (digits !== undefined) return v.toFixed(digits);
  const a = Math.abs(v);
  if (a >= 100 || Number.isInteger(v)) return Math.round(v).toLocaleString('en-US');
  if (a >= 10) return v.toFixed(1);
  if (a >= 1) return v.toFixed(2);
  return v === 0 ? '0' : v.toPrecision(2);
}

/** Renders `rows` as a fixed-width table under `title`, with notes (if any) below it. */
export function table(title: string, columns: readonly Column[], rows: readonly Row[], notes: readonly string[] = []): string {
  if (rows.length === 0) return [`\n## ${title}`, ...notes.map((n) => `  ${n}`)].join('\n');
  const cells = rows.map((r) => columns.map((c) => (c.key === 'name' && r.sub ? '  ' : '') + fmt(r[c.key] as Cell, c.digits)));
  const width = columns.map((c, i) => Math.max(c.title.length, ...cells.map((row) => row[i]!.length)));
  const left = columns.map((c) => c.align === 'left' || (c.align === undefined && rows.every((r) => typeof r[c.key] !== 'number')));
  const line = (vals: readonly string[]): string =>
    vals
      .map((v, i) => (left[i] ? v.padEnd(width[i]!) : v.padStart(width[i]!)))
      .join('  ')
      .trimEnd();
  const out = [`\n## ${title}`, line(columns.map((c) => c.title)), width.map((w) => '-'.repeat(w)).join('  '), ...cells.map(line)];
  for (const n of notes) out.push(`  ${n}`);
  return out.join('\n');
}
