/**
 * Config problems are data: a closed set of codes, a position, and a message that says
 * what is wrong and how to fix it. Only the CLI turns them into text and an exit code.
 */
import { ExpError } from '../errors.js';

export type ProblemCode =
  | 'FILE_NOT_FOUND'
  | 'YAML_SYNTAX'
  | 'DUPLICATE_KEY'
  | 'UNKNOWN_KEY'
  | 'REQUIRED'
  | 'TYPE'
  | 'RANGE'
  | 'ENUM'
  | 'PATTERN'
  | 'INVALID'
  | 'EMPTY_SWEEP'
  | 'EXTENDS_CYCLE'
  | 'EXTENDS_MISSING'
  | 'SWEEP_UNKNOWN_PATH'
  | 'SWEEP_VALUE'
  | 'SWEEP_CONFLICT'
  | 'SWEEP_ZIP_LENGTH'
  | 'SWEEP_RANDOM'
  | 'SWEEP_TOO_LARGE'
  | 'SWEEP_EMPTY_RESULT'
  /** Valid in the schema, but this version of exp cannot run it yet (sweep.tpe, early_stop asha/hyperband). */
  | 'SWEEP_NOT_SUPPORTED'
  | 'OVERRIDE_SYNTAX'
  /** The user config file (~/.config/exp/config.yaml, $EXP_CONFIG) is a folder, FIFO, device or too large. */
  | 'USER_CONFIG_UNREADABLE'
  | 'PATH_ESCAPES'
  | 'DATA_NOT_FOUND'
  | 'DATA_INVALID'
  | 'WEIGHTS_NOT_FOUND'
  | 'WEIGHTS_CHECKSUM'
  | 'BACKEND_UNAVAILABLE';

export interface Position {
  /** 1-based line and column; 0 when the problem has no place in a file (e.g. a --set flag). */
  line: number;
  col: number;
}

export interface Problem extends Position {
  code: ProblemCode;
  message: string;
  /** File the problem is in, or a pseudo-source such as `--set`. */
  file: string;
  /** Dotted path of the offending key ('' for the whole document). */
  path: string;
}

/** Thrown only to carry problems across a pure stage boundary; callers catch and render. */
export class ConfigError extends ExpError<'CONFIG_INVALID'> {
  readonly problems: Problem[];
  readonly texts: ReadonlyMap<string, string>;

  /** `texts` maps a file name to its text, for the excerpts under each problem. */
  constructor({ problems, texts = new Map() }: { problems: Problem[]; texts?: ReadonlyMap<string, string> }) {
    super({ code: 'CONFIG_INVALID', message: problems.map((p) => `${p.file}:${p.line}:${p.col} ${p.code} ${p.message}`).join('\n') });
    this.name = 'ConfigError';
    this.problems = problems;
    this.texts = texts;
  }
}

/**
 * Renders problems as `FILE:LINE:COL  path  message`, then the source line and a caret,
 * in the style of compilers, so editors and terminals can jump to the place.
 * `sources` maps a file name to its text (for the excerpt).
 */
export function renderProblems(problems: readonly Problem[], sources: ReadonlyMap<string, string>): string {
  const sorted = [...problems].sort((a, b) => a.file.localeCompare(b.file) || a.line - b.line || a.col - b.col);
  const blocks = sorted.map((p) => {
    const where = p.line > 0 ? `${p.file}:${p.line}:${p.col}` : p.file;
    const head = `${where}  ${p.path || '(root)'}  ${p.message} [${p.code}]`;
    const text = sources.get(p.file);
    if (!text || p.line <= 0) return head;
    const full = text.split(/\r?\n/)[p.line - 1] ?? '';
    // A long line (minified or generated YAML) is shown as a window around the column.
    const from = full.length > 120 ? Math.max(0, Math.min(p.col - 60, full.length - 120)) : 0;
    const line = `${from > 0 ? '…' : ''}${full.slice(from, from + 120)}${from + 120 < full.length ? '…' : ''}`;
    const gutter = String(p.line).padStart(4);
    return `${head}\n${gutter} | ${line}\n${' '.repeat(gutter.length)} | ${' '.repeat(Math.max(0, p.col - 1 - from + (from > 0 ? 1 : 0)))}^`;
  });
  const n = problems.length;
  return `${blocks.join('\n\n')}\n\n${n} problem${n === 1 ? '' : 's'} found.`;
}

/** Levenshtein distance, for "did you mean" suggestions on misspelt keys and paths. */
export function editDistance(a: string, b: string): number {
  const dp = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    let prev = dp[0]!;
    dp[0] = i;
    for (let j = 1; j <= b.length; j++) {
      const tmp = dp[j]!;
      dp[j] = Math.min(dp[j]! + 1, dp[j - 1]! + 1, prev + (a[i - 1] === b[j - 1] ? 0 : 1));
      prev = tmp;
    }
  }
  return dp[b.length]!;
}

/** The closest candidate within a distance that scales with the word's length, if any. */
export function closest(word: string, candidates: Iterable<string>): string | undefined {
  let best: string | undefined;
  let bestD = Infinity;
  for (const c of candidates) {
    const d = editDistance(word.toLowerCase(), c.toLowerCase());
    if (d < bestD) {
      bestD = d;
      best = c;
    }
  }
  return best !== undefined && bestD <= Math.max(2, Math.floor(word.length / 3)) ? best : undefined;
}
