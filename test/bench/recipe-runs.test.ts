// Regression: `npm run parity` on a checkout without .venv crashed with "Cannot read properties of
// null (reading 'slice')" (spawnSync of a missing Python has no stderr). It now says what to run.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { tmpdir } from 'node:os';
import { run } from '../../bench/recipe-runs.js';

test('a peer Python that is not installed is named with the command that installs it', () => {
  const missing = join(tmpdir(), 'no-such-checkout', '.venv', 'bin', 'python');
  assert.throws(
    () => run(missing, ['-c', 'print(1)']),
    (e: unknown) => e instanceof Error && /could not be started/.test(e.message) && /scripts\/setup-venv\.sh/.test(e.message),
  );
});

test('a program that fails still reports its own output', () => {
  assert.throws(
    () => run(process.execPath, ['-e', 'console.error("boom"); process.exit(3)']),
    (e: unknown) => e instanceof Error && /failed \(3\)/.test(e.message) && /boom/.test(e.message),
  );
});
