/**
 * Regression (CI, stop 26): the points of a sweep start at once and each generated the same
 * synthetic dataset into the shared data.path, so the images were written again after another
 * point had read them: their new mtimes gave the points different dataset fingerprints (and
 * feature-cache keys), and a reader could meet a half-written JPEG. Generation now happens once,
 * under a lock in data.path, whether the racers are one process or several.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { spawn } from 'node:child_process';
import { ensureDataset } from '../../src/core/data.js';
import type { RunConfig } from '../../src/config/normalise.js';
import { tempDir } from '../helpers/cli.js';

const synthConfig = (path: string): RunConfig => ({ data: { path, csv: 'train_v2.csv', synth: { count: 24, seed: 3, size: 32 } } }) as unknown as RunConfig;

/** Every image is older than the CSV (written last): none was rewritten after the dataset was complete. */
function assertWrittenOnce(path: string): void {
  const csv = statSync(join(path, 'train_v2.csv')).mtimeMs;
  const images = readdirSync(join(path, 'train-jpg'));
  assert.equal(images.length, 24);
  for (const f of images) assert.ok(statSync(join(path, 'train-jpg', f)).mtimeMs <= csv, `${f} was written after the CSV`);
  assert.deepEqual(
    readdirSync(path).filter((f) => f.startsWith('.synth.lock')),
    [],
    'the lock is released',
  );
}

test('two points generating the same synthetic dataset at once in one process: it is written once', async () => {
  const path = join(tempDir('exp-synth-race-'), 'data');
  const said: string[] = [];
  await Promise.all([0, 1].map(() => ensureDataset(synthConfig(path), (s) => said.push(s))));
  assert.equal(said.filter((s) => s.includes('generating')).length, 1, said.join(''));
  assertWrittenOnce(path);
});

test('three processes generating the same synthetic dataset at once: it is written once', async () => {
  const dir = tempDir('exp-synth-race-procs-');
  const path = join(dir, 'data');
  const script = join(dir, 'ensure.mts');
  const src = new URL('../../src/core/data.ts', import.meta.url).pathname;
  writeFileSync(
    script,
    `import { ensureDataset } from ${JSON.stringify(src)};\n` +
      `await ensureDataset({ data: { path: ${JSON.stringify(path)}, csv: 'train_v2.csv', synth: { count: 24, seed: 3, size: 32 } } } as never, (s) => process.stdout.write(s));\n`,
  );
  const run = (): Promise<{ code: number | null; out: string }> =>
    new Promise((resolve) => {
      const p = spawn(process.execPath, ['--import', 'tsx', script], { stdio: ['ignore', 'pipe', 'inherit'] });
      let out = '';
      p.stdout.on('data', (b: Buffer) => (out += b.toString()));
      p.on('close', (code) => resolve({ code, out }));
    });
  const results = await Promise.all([run(), run(), run()]);
  for (const r of results) assert.equal(r.code, 0, r.out);
  assert.equal(results.filter((r) => r.out.includes('generating')).length, 1, results.map((r) => r.out).join('\n---\n'));
  assertWrittenOnce(path);
});
