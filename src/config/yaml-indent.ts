/**
 * A key indented one space too far or too little makes the yaml parser report two or three
 * errors, at the line above or at the value before it ("Nested mappings are not allowed in
 * compact mappings", "Implicit keys need to be on a single line", ...), none of which names the
 * mistake. This reads the block structure from the text itself and finds the first line whose
 * indentation matches no mapping or list open above it, so that one problem points at that line.
 */

/** The yaml parser's error codes that a misplaced indentation produces. */
export const INDENT_ERROR_CODES: ReadonlySet<string> = new Set([
  'BAD_INDENT',
  'BLOCK_AS_IMPLICIT_KEY',
  'MULTILINE_IMPLICIT_KEY',
  'MISSING_CHAR',
  'TAB_AS_INDENT',
  'UNEXPECTED_TOKEN',
]);

export interface IndentProblem {
  /** 1-based line and column of the first character of the misplaced line. */
  line: number;
  col: number;
  message: string;
  /** The line where the structure stops making sense (the misindented line, or the one after a misindented first line of a block). */
  seen: number;
}

/** A line's shape: its indentation, and whether it is a list item or a key (and what follows the key). */
interface Shape {
  line: number;
  indent: number;
  item: boolean;
  /** Column of what follows '- ' in a list item. */
  content: number;
  key: string | undefined;
  /** What follows the key's colon, comment removed ('' when the key opens a block). */
  value: string | undefined;
}

/** One open block collection: the column its entries start at, and what opened it. */
interface Level {
  indent: number;
  /** What it belongs to, as messages name it: "'data'", "the list item on line 4 of 'zip'". */
  owner: string | undefined;
  /** The indentation of the key that opened it (undefined for the top level and a list item's content). */
  parent?: number;
  /** Its first line, and how many lines start an entry at its column. */
  first?: Shape;
  count: number;
}

const KEY = /^("(?:[^"\\]|\\.)*"|'[^']*'|[^\s#'"[\]{}][^#]*?)\s*:(?:\s+(.*))?$/;
const uncomment = (s: string): string => s.replace(/(^|\s)#.*$/, '').trim();
/** A value that leaves the block open below its key: nothing, an anchor or a tag alone. */
const opensBlock = (value: string): boolean => /^((&|!)\S*\s*)*$/.test(value);
/** A value whose lines that follow (more indented) are its text: `|`, `>-`, `|2` ... */
const blockScalar = (value: string): boolean => /^((&|!)\S*\s+)*[|>][-+0-9]*$/.test(value);
const spaces = (n: number): string => `${n} space${n === 1 ? '' : 's'}`;

function shapeOf(text: string, line: number): Shape {
  const indent = text.length - text.trimStart().length;
  let rest = text.slice(indent);
  let content = indent;
  const item = /^-(\s|$)/.test(rest);
  if (item) {
    const after = rest.slice(1);
    content = indent + 1 + (after.length - after.trimStart().length);
    rest = after.trimStart();
  }
  const m = KEY.exec(rest);
  const value = m ? uncomment(m[2] ?? '') : item && opensBlock(uncomment(rest)) ? '' : undefined;
  return { line, indent, item, content, key: m?.[1], value };
}

/** A flow collection or quoted string that does not end on its line: not followed here. */
function unclosed(value: string): boolean {
  const bare = value.replace(/"(?:[^"\\]|\\.)*"|'[^']*'/g, '').trim();
  if (/^["']/.test(bare)) return true;
  return /^[[{]/.test(value.trim()) && (bare.match(/[[{]/g) ?? []).length !== (bare.match(/[\]}]/g) ?? []).length;
}

/** The significant lines (no blanks, no comments) with their shapes. */
const shapesOf = (text: string): { raw: string; shape: Shape }[] =>
  text
    .split(/\r?\n/)
    .map((raw, i) => ({ raw, i }))
    .filter(({ raw }) => raw.trim() !== '' && !raw.trim().startsWith('#'))
    .map(({ raw, i }) => ({ raw, shape: shapeOf(raw, i + 1) }));

/** How far the file indents a key's block below it, mostly (2 when it cannot tell). */
function stepOf(shapes: readonly { shape: Shape }[]): number {
  const counts = new Map<number, number>();
  for (let i = 1; i < shapes.length; i++) {
    const [a, b] = [shapes[i - 1]!.shape, shapes[i]!.shape];
    const base = a.item ? a.content : a.indent;
    if (a.key !== undefined && a.value === '' && b.indent > base) counts.set(b.indent - base, (counts.get(b.indent - base) ?? 0) + 1);
  }
  let best: [number, number] = [2, counts.get(2) ?? 0];
  for (const [step, n] of counts) if (n > best[1]) best = [step, n];
  return best[0];
}

/** The first misindented line of `text`, or undefined when its block structure is consistent (or too unusual to follow). */
export function findMisindented(text: string): IndentProblem | undefined {
  const shapes = shapesOf(text);
  const step = stepOf(shapes);
  const levels: Level[] = [];
  let prev: Shape | undefined;
  let scalar: { key: string | undefined; line: number; above: number; indent?: number } | undefined;
  for (const { raw, shape } of shapes) {
    if (scalar && shape.indent > scalar.above) {
      // The text of a block scalar: its first line sets the indentation of the rest.
      scalar.indent ??= shape.indent;
      if (shape.indent >= scalar.indent) continue;
      const of = scalar.key ? ` of '${scalar.key}'` : '';
      const message = `YAML indentation: this line of the text${of} (line ${scalar.line}) is indented ${spaces(shape.indent)}, less than its first line; indent it ${spaces(scalar.indent)}`;
      return { line: shape.line, col: shape.indent + 1, message, seen: shape.line };
    }
    scalar = undefined;
    const trimmed = raw.trim();
    // Tabs, documents and complex keys ('? key'): more than this reads; the parser's own message stands.
    if (raw.slice(0, shape.indent).includes('\t') || /^(---|\.\.\.|\?|:)(\s|$)/.test(trimmed)) return undefined;
    if (levels.length === 0) levels.push({ indent: shape.indent, owner: undefined, parent: shape.indent === 0 ? undefined : -step, first: shape, count: 0 });
    const top = levels.at(-1)!;
    const opened = prev?.value !== undefined && opensBlock(prev.value);
    if (opened && shape.indent > top.indent) {
      const owner = prev?.key === undefined ? undefined : `'${prev.key}'`;
      levels.push({ indent: shape.indent, owner, parent: prev!.item ? prev!.content : prev!.indent, first: shape, count: 1 });
    } else if (!(opened && shape.item && shape.indent === top.indent)) {
      const wrong = misplaced(shape, levels, prev, step);
      if (wrong) return wrong;
      if (shape.indent > levels.at(-1)!.indent) continue; // the text of a plain value, continued on the next line
      levels.at(-1)!.count++;
    }
    const list = levels.at(-1)!.owner;
    if (shape.item && shape.value !== undefined)
      levels.push({ indent: shape.content, owner: `the list item on line ${shape.line}${list ? ` of ${list}` : ''}`, count: 1 });
    const tail = shape.value ?? (shape.item ? raw.slice(shape.content).trim() : trimmed);
    if (blockScalar(tail)) scalar = { key: shape.key, line: shape.line, above: shape.item && shape.key !== undefined ? shape.content : shape.indent };
    else if (unclosed(tail)) return undefined;
    prev = shape;
  }
  return undefined;
}

/**
 * When a block's only line so far is off the file's usual step and the line after it is on
 * it (`data:` / `   path: d` / `  size: 4`), the first line is the one that is wrong.
 */
function firstIsWrong(level: Level, indent: number, step: number, seen: number): IndentProblem | undefined {
  const { parent, first } = level;
  if (level.count !== 1 || parent === undefined || first === undefined || level.indent - parent === step || indent - parent !== step) return undefined;
  const what = first.key !== undefined ? `key '${first.key}'` : 'list item';
  const message = `YAML indentation: the ${what} is indented ${spaces(first.indent)}, unlike the line after it (${spaces(indent)}) in ${level.owner ?? 'the same mapping'}; indent it ${spaces(indent)}`;
  return { line: first.line, col: first.indent + 1, message, seen };
}

/** Why a line that opens nothing new sits where it does not belong (popping `levels` to its column), or undefined when it is in place. */
function misplaced(shape: Shape, levels: Level[], prev: Shape | undefined, step: number): IndentProblem | undefined {
  const top = levels.at(-1)!;
  const what = shape.key !== undefined ? `key '${shape.key}'` : 'list item';
  const here = (message: string): IndentProblem => ({
    line: shape.line,
    col: shape.indent + 1,
    message: `YAML indentation: the ${what} is indented ${spaces(shape.indent)}, ${message}`,
    seen: shape.line,
  });
  const blame = (level: Level | undefined): IndentProblem | undefined => (level ? firstIsWrong(level, shape.indent, step, shape.line) : undefined);
  if (shape.indent > top.indent) {
    if (shape.key === undefined) return undefined; // '- x' or text indented more than a value: the value's text, continued
    const above = prev?.key !== undefined ? `'${prev.key}' on line ${prev.line}, which has a value` : `line ${prev?.line ?? 1}`;
    return blame(top) ?? here(`more than ${above}; indent it ${spaces(top.indent)}, like the other keys${top.owner ? ` of ${top.owner}` : ''}`);
  }
  let popped: Level | undefined;
  while (levels.length > 1 && levels.at(-1)!.indent > shape.indent) popped = levels.pop();
  const under = levels.at(-1)!;
  if (under.indent === shape.indent) return undefined;
  if (popped === undefined) return blame(under) ?? here(`less than the first key of the file; indent it ${spaces(under.indent)}`);
  levels.push(popped);
  const inner = `${spaces(popped.indent)} to stay in ${popped.owner ?? 'the mapping above'}`;
  return blame(popped) ?? blame(under) ?? here(`which lines up with no mapping above it; indent it ${inner}, or ${spaces(under.indent)} to leave it`);
}
