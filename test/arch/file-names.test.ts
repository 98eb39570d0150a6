/**
 * Only src/store/ names the files of a run, sweep, split, checkpoint or ensemble folder: every
 * other module reaches them through store/ (layout.ts's names, the folder objects, the checked
 * readers). The list of names is taken from layout.ts itself, so a file added there is covered.
 * A name counts when a string literal IS the name (or a path ending in it, like
 * `${dir}/index.json`); prose that mentions a file in a message or help text does not.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import ts from 'typescript';
import { CHECKPOINT_FILES, ENSEMBLE_FILES, RUN_FILES, SPLIT_FILES, SWEEP_FILES } from '../../src/store/layout.js';
import { ROOT } from '../helpers/cli.js';

const SRC = join(ROOT, 'src');

/** File names only: a name with a dot or an extension (folder names such as 'split' and 'checkpoints' are ordinary words). */
const NAMES = new Set(
  [RUN_FILES, SWEEP_FILES, SPLIT_FILES, CHECKPOINT_FILES, ENSEMBLE_FILES].flatMap((o) => Object.values(o) as string[]).filter((n) => n.includes('.')),
);

function sources(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((d) =>
    d.isDirectory() ? sources(join(dir, d.name)) : d.name.endsWith('.ts') ? [join(dir, d.name)] : [],
  );
}

/** Whether a literal's text is one of the names, or a path whose last part is one. */
const namesFile = (text: string): boolean => NAMES.has(text) || (NAMES.has(text.split('/').at(-1)!) && text.includes('/') && !text.includes(' '));

/** Each string or template-literal part of `file` that names a folder file, as `path:line: text`. */
function namings(file: string): string[] {
  const text = readFileSync(file, 'utf8');
  const sf = ts.createSourceFile(file, text, ts.ScriptTarget.Latest, true);
  const found: string[] = [];
  const visit = (n: ts.Node): void => {
    let lit: string | undefined;
    if (ts.isStringLiteral(n) || ts.isNoSubstitutionTemplateLiteral(n)) lit = n.text;
    // A template part right after ${...}: `${dir}/state.json` builds a path by hand.
    else if (ts.isTemplateMiddle(n) || ts.isTemplateTail(n)) lit = n.text;
    if (lit !== undefined && namesFile(lit) && !ts.isImportDeclaration(n.parent) && !ts.isExportDeclaration(n.parent)) {
      const line = sf.getLineAndCharacterOfPosition(n.getStart()).line + 1;
      found.push(`${relative(ROOT, file)}:${line}: ${JSON.stringify(lit)}`);
    }
    ts.forEachChild(n, visit);
  };
  visit(sf);
  return found;
}

test('the list of folder file names comes from store/layout.ts and holds the files of every folder kind', () => {
  for (const n of ['config.yaml', 'point.json', 'run.json', 'summary.json', 'metrics.jsonl', 'events.jsonl', 'thresholds.json', 'tags.txt'])
    assert.ok(NAMES.has(n), n);
  for (const n of ['sweep.yaml', 'index.json', 'split.json', 'train.txt', 'val.txt', 'state.json', 'ensemble.json']) assert.ok(NAMES.has(n), n);
});

/**
 * Literals that are the same word as a folder file but name something else, each with its reason
 * (`module: "literal"`, as namings reports them without the line).
 */
const NOT_FOLDER_FILES = new Set([
  // The user config file, ~/.config/exp/config.yaml: the user's launcher defaults, not a run folder's config.yaml.
  'src/config/user.ts: "config.yaml"',
]);

test('no module outside src/store/ names a file of a run, sweep, split, checkpoint or ensemble folder', () => {
  const offenders = sources(SRC)
    .filter((f) => !relative(SRC, f).startsWith('store/'))
    .flatMap(namings)
    .filter((o) => !NOT_FOLDER_FILES.has(o.replace(/:\d+: /, ': ')));
  assert.deepEqual(offenders, [], `name these files through src/store/ (layout.ts, folder.ts) instead:\n${offenders.join('\n')}`);
});

test('the check itself sees a file name in a literal and in a path built by hand, and not in prose', () => {
  assert.ok(namesFile('state.json'));
  assert.ok(namesFile('/index.json'));
  assert.ok(!namesFile('see summary.json for every number'));
  assert.ok(!namesFile('split'));
});
