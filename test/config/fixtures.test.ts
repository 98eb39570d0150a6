// Every fixture under fixtures/invalid states the problems it must produce, one
// `# expect: CODE [file:]LINE:COL [suggestion]` line each; every fixture under
// fixtures/valid must validate cleanly.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { basename, join } from 'node:path';
import { planExperiment } from '../../src/sweep/plan.js';

const dir = new URL('./fixtures/', import.meta.url).pathname;

for (const name of readdirSync(join(dir, 'valid')).filter((n) => n.endsWith('.yaml'))) {
  test(`valid fixture ${name} validates`, () => {
    const r = planExperiment(join(dir, 'valid', name));
    assert.deepEqual(r.problems, []);
    assert.ok(r.plan && r.plan.points.length >= 1);
  });
}

for (const name of readdirSync(join(dir, 'invalid'))) {
  const file = join(dir, 'invalid', name);
  const expects = [...readFileSync(file, 'utf8').matchAll(/^# expect: (\w+) (?:([\w.-]+):)?(\d+):(\d+)(?: (\S+))?$/gm)].map((m) => ({
    code: m[1]!,
    file: m[2] ?? name,
    line: Number(m[3]),
    col: Number(m[4]),
    hint: m[5],
  }));
  test(`invalid fixture ${name} reports ${expects.map((e) => `${e.code}@${e.line}:${e.col}`).join(', ')}`, () => {
    assert.ok(expects.length > 0, 'fixture must state what it expects');
    const r = planExperiment(file);
    assert.equal(r.plan, undefined);
    const got = r.problems.map((p) => ({ code: p.code, file: basename(p.file), line: p.line, col: p.col, message: p.message }));
    for (const e of expects) {
      const hit = got.find((g) => g.code === e.code && g.file === e.file && g.line === e.line && g.col === e.col);
      assert.ok(hit, `expected ${e.code} at ${e.file}:${e.line}:${e.col}; got ${JSON.stringify(got)}`);
      if (e.hint) assert.match(hit.message, new RegExp(e.hint.replace(/\./g, '\\.')), 'message should suggest the fix');
    }
    assert.equal(got.length, expects.length, `unexpected extra problems: ${JSON.stringify(got)}`);
  });
}
