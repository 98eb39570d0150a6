/** Printing helpers shared by commands: errors, problems, tables, values. */
import { isAbsolute, relative } from 'node:path';
import { ConfigError, renderProblems, type Problem } from '../config/problem.js';
import { ExpError, fromSystemError } from '../errors.js';
import { EXIT, type ExitCode, type Io } from './io.js';

/** Shows file names relative to the working directory, as the user typed them. */
export function displayPath(file: string, cwd = process.cwd()): string {
  if (!isAbsolute(file)) return file;
  const rel = relative(cwd, file);
  return rel.startsWith('..') ? file : rel;
}

export function printProblems(io: Io, problems: readonly Problem[], texts: ReadonlyMap<string, string>): void {
  const shown = problems.map((p) => ({ ...p, file: displayPath(p.file, io.cwd) }));
  const shownTexts = new Map([...texts].map(([k, v]) => [displayPath(k, io.cwd), v]));
  io.stderr.write(renderProblems(shown, shownTexts) + '\n');
}

/** A plain aligned text table (no colours, so it pipes cleanly). */
export function table(headers: string[], rows: string[][]): string {
  const widths = headers.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (cells: string[]): string =>
    cells
      .map((c, i) => c.padEnd(widths[i]!))
      .join('  ')
      .trimEnd();
  return [line(headers), line(widths.map((w) => '-'.repeat(w))), ...rows.map(line)].join('\n') + '\n';
}

export { formatValue } from '../query/cells.js';

/**
 * Prints an error a user or a file caused (exit 2 or 1), or reports a bug in exp (exit 70).
 * `exit` replaces a coded error's own status (exp train: a failed run is 1, a busy folder 75).
 */
export function reportError(e: unknown, cmd: string, io: Io, exit?: ExitCode): number {
  if (e instanceof ConfigError) {
    printProblems(io, e.problems, e.texts);
    return EXIT.invalid;
  }
  const known = e instanceof ExpError ? e : fromSystemError(e);
  if (known) {
    io.stderr.write(`exp ${cmd}: ${known.render()}\n`);
    return exit ?? (known.exit === 'invalid' ? EXIT.invalid : EXIT.failed);
  }
  io.stderr.write(
    `exp ${cmd}: internal error: ${(e as Error)?.stack ?? String(e)}\nThis is a bug in exp; please report it with the command you ran and the output above.\n`,
  );
  return EXIT.bug;
}
