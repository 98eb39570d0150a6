#!/usr/bin/env node
// The test command (`npm test`): runs every test/**/*.test.ts with Node's built-in runner
// (through tsx), one file at a time, because training tests each use both cores.
// Extra args are file filters: `npm test -- config sweep` runs files whose path has either word.
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { spawnSync } from 'node:child_process';

const root = new URL('..', import.meta.url).pathname;
const find = (dir) =>
  readdirSync(dir).flatMap((n) => {
    const p = join(dir, n);
    if (n === 'node_modules' || n === 'fixtures') return [];
    return statSync(p).isDirectory() ? find(p) : n.endsWith('.test.ts') ? [p] : [];
  });
const filters = process.argv.slice(2);
const files = find(join(root, 'test'))
  .map((f) => relative(root, f))
  .sort()
  .filter((f) => filters.length === 0 || filters.some((w) => f.includes(w)));
if (files.length === 0) {
  console.error('no test files match');
  process.exit(1);
}
const tap = join(tmpdir(), `exp-test-${process.pid}.tap`);
// Tests never read the developer's user config (~/.config/exp/config.yaml, $EXP_CONFIG): the
// suite runs with an empty XDG_CONFIG_HOME and no EXP_CONFIG; a test that wants one sets it.
const configHome = mkdtempSync(join(tmpdir(), 'exp-test-config-'));
const env = { ...process.env, EXP_TEST: '1', XDG_CONFIG_HOME: configHome };
delete env.EXP_CONFIG;
const res = spawnSync(
  process.execPath,
  [
    '--import',
    'tsx',
    '--test',
    '--test-concurrency=1',
    '--test-reporter=spec',
    '--test-reporter-destination=stdout',
    '--test-reporter=tap',
    `--test-reporter-destination=${tap}`,
    ...files,
  ],
  { cwd: root, stdio: 'inherit', env },
);
// One plain closing line that any CI log reader understands.
const text = existsSync(tap) ? readFileSync(tap, 'utf8') : '';
const count = (k) => Number((text.match(new RegExp(`^# ${k} (\\d+)$`, 'm')) ?? [])[1] ?? 0);
console.log(`\n${count('pass')} passed, ${count('fail')} failed, ${count('skipped')} skipped`);
rmSync(tap, { force: true });
rmSync(configHome, { recursive: true, force: true });
process.exit(res.status ?? 1);
