/**
 * No function in src/ is longer than 80 lines, counted from its header to its closing brace
 * (leading comments left out), as the TypeScript compiler parses it: function declarations
 * and expressions, arrow functions, methods, constructors and accessors alike. A nested
 * function counts inside its parent too, so splitting means moving code out, not wrapping it.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import ts from 'typescript';
import { ROOT } from '../helpers/cli.js';

const SRC = join(ROOT, 'src');
const MAX_LINES = 80;

function sources(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((d) =>
    d.isDirectory() ? sources(join(dir, d.name)) : d.name.endsWith('.ts') && !d.name.endsWith('.gen.ts') ? [join(dir, d.name)] : [],
  );
}

/** The name a reader would look for: the function's own, its variable's or property's, else `<anonymous>`. */
function nameOf(node: ts.FunctionLikeDeclaration, sf: ts.SourceFile): string {
  if (ts.isConstructorDeclaration(node)) return `${(node.parent as ts.ClassLikeDeclaration).name?.getText(sf) ?? '<class>'}.constructor`;
  if (node.name) return node.name.getText(sf);
  const p = node.parent;
  if ((ts.isVariableDeclaration(p) || ts.isPropertyAssignment(p) || ts.isPropertyDeclaration(p)) && p.name) return p.name.getText(sf);
  return '<anonymous>';
}

/** Every function-like node of src/ with its length in lines (header to closing brace). */
function functionLengths(): { where: string; name: string; lines: number }[] {
  const out: { where: string; name: string; lines: number }[] = [];
  for (const file of sources(SRC)) {
    const sf = ts.createSourceFile(file, readFileSync(file, 'utf8'), ts.ScriptTarget.Latest, true);
    const visit = (n: ts.Node): void => {
      if (ts.isFunctionLike(n) && 'body' in n && n.body !== undefined) {
        const fn = n as ts.FunctionLikeDeclaration;
        const first = sf.getLineAndCharacterOfPosition(fn.getStart(sf)).line;
        const last = sf.getLineAndCharacterOfPosition(fn.getEnd()).line;
        out.push({ where: `${relative(ROOT, file)}:${first + 1}`, name: nameOf(fn, sf), lines: last - first + 1 });
      }
      ts.forEachChild(n, visit);
    };
    visit(sf);
  }
  return out;
}

test('the function counter sees methods, arrows and nested functions, and counts header to closing brace', () => {
  const all = functionLengths();
  assert.ok(all.length > 500, `only ${all.length} functions found in src/`);
  const parse = all.find((f) => f.where.startsWith('src/cli/command.ts') && f.name === 'parseCommandArgs');
  assert.ok(parse && parse.lines > 5, 'parseCommandArgs in src/cli/command.ts');
});

test(`no function in src/ is over ${MAX_LINES} lines`, () => {
  const long = functionLengths()
    .filter((f) => f.lines > MAX_LINES)
    .sort((a, b) => b.lines - a.lines)
    .map((f) => `${f.where} ${f.name}: ${f.lines} lines`);
  assert.deepEqual(long, [], `split these (the longest first):\n${long.join('\n')}`);
});
