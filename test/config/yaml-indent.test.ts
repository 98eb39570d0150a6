// A misindented line used to come back as two or three raw parser messages pointing at the line
// above it (or at the value before it); it is one problem at the line that is wrong.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseYaml } from '../../src/config/load.js';
import { findMisindented } from '../../src/config/yaml-indent.js';
import { exp, tempDir } from '../helpers/cli.js';

const one = (text: string): { line: number; col: number; message: string } => {
  const { problems } = parseYaml('f.yaml', text);
  assert.equal(problems.length, 1, JSON.stringify(problems));
  assert.equal(problems[0]!.code, 'YAML_SYNTAX');
  return problems[0]!;
};

test('a key indented one space more than its siblings is one problem at its own line, not at the value above', () => {
  const p = one('name: x\ndata:\n  path: d\n   image_size: 64\ntraining:\n  epochs: 2\n');
  assert.deepEqual([p.line, p.col], [4, 4]);
  assert.match(p.message, /key 'image_size' is indented 3 spaces, more than 'path' on line 3.*indent it 2 spaces, like the other keys of 'data'/);
});

test('a key indented one space less than its siblings is one problem (the parser gives three) at its line', () => {
  const p = one('name: x\ndata:\n  path: d\n  image_size: 64\n resize: squash\n  limit: 3\n');
  assert.deepEqual([p.line, p.col], [5, 2]);
  assert.match(p.message, /key 'resize' is indented 1 space, which lines up with no mapping above it; indent it 2 spaces to stay in 'data', or 0 spaces/);
});

test('the first key of a block indented off the file step is the one blamed, not the sibling after it', () => {
  const more = one('name: x\ndata:\n   path: d\n  image_size: 64\ntraining:\n  epochs: 2\n');
  assert.deepEqual([more.line, more.col], [3, 4]);
  assert.match(more.message, /key 'path' is indented 3 spaces, unlike the line after it \(2 spaces\) in 'data'; indent it 2 spaces/);
  const less = one('name: x\ndata:\n path: d\n  image_size: 64\ntraining:\n  epochs: 2\n');
  assert.deepEqual([less.line, less.col], [3, 2]);
  const top = one(' name: x\ndata:\n  path: d\n');
  assert.deepEqual([top.line, top.col], [1, 2]);
});

test('misindented sweep entries, list items and block text are found at their line', () => {
  const zip = one('name: x\nsweep:\n  zip:\n    - training.optimizer: [adam, sgd]\n     training.learning_rate: [0.1, 0.01]\n');
  assert.deepEqual([zip.line, zip.col], [5, 6]);
  assert.match(zip.message, /indent it 6 spaces to stay in the list item on line 4 of 'zip'/);
  const item = one('name: x\ndata:\n  tags:\n    - a\n   - b\n');
  assert.deepEqual([item.line, item.col], [5, 4]);
  const text = one('name: x\ndescription: >\n  hello\n world\n');
  assert.deepEqual([text.line, text.col], [4, 2]);
  assert.match(text.message, /text of 'description' \(line 2\).*indent it 2 spaces/);
});

test('valid YAML with lists, anchors, block scalars, continued values and flow collections has no misindented line', () => {
  const valid = [
    'a:\n- &x\n  k: 1\n  j: 2\n- b\nc: |\n    text\nd: 1\n',
    'notes:\n  - one long item\n    - that continues here\n  - |\n    block\n     more\nlist: [1,\n  2]\n',
    'description: a plain value\n  continued on the next line\nname: x\n',
    '  indented: 1\n  document: 2\n',
  ];
  for (const text of valid) {
    assert.deepEqual(parseYaml('f.yaml', text).problems, [], text);
    assert.equal(findMisindented(text), undefined, text);
  }
});

test('exp validate prints one problem, with the misindented line and a caret under it', () => {
  const dir = tempDir();
  writeFileSync(join(dir, 'x.yaml'), 'name: x\ndata:\n  path: d\n   image_size: 64\n');
  const r = exp(['validate', 'x.yaml'], { cwd: dir });
  assert.equal(r.code, 2);
  assert.match(r.stderr, /^x\.yaml:4:4 {2}\(root\) {2}YAML indentation: the key 'image_size' is indented 3 spaces/m);
  assert.match(r.stderr, /^ {3}4 \| {4}image_size: 64\n {5}\| {4}\^$/m);
  assert.match(r.stderr, /\n1 problem found\./);
});
