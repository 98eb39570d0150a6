// The README's main job, as a new user runs it: the quickstart experiment trains end to end
// on wasm (the backend every machine has) and really learns: its validation F2 beats the best
// constant predictor (always the k most frequent tags) by at least 0.02.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, readdirSync, existsSync } from 'node:fs';
import { join } from 'node:path';
import sharp from 'sharp';
import { exp, tempDir } from '../helpers/cli.js';

test('exp run experiments/quickstart.yaml learns on wasm: val F2 beats the best constant predictor by >= 0.02', async () => {
  const dir = tempDir();
  const runs = join(dir, 'runs');
  const r = exp(['run', 'experiments/quickstart.yaml', '--set', 'backend=wasm', '--runs-dir', runs], {
    env: { EXP_CACHE_DIR: join(dir, 'cache') },
    timeoutMs: 1_200_000,
  });
  assert.equal(r.code, 0, r.stdout.slice(-3000) + r.stderr);
  const sweep = join(runs, 'quickstart', readdirSync(join(runs, 'quickstart'))[0]!);
  const run = join(
    sweep,
    readdirSync(sweep).find((n) => n.startsWith('quickstart-'))!,
  );
  const s = JSON.parse(readFileSync(join(run, 'summary.json'), 'utf8')) as {
    status: string;
    backend: string;
    best: { epoch: number; metrics: Record<string, number> };
    baseline: { val_fbeta: number; constant_top_k: number };
    final: Record<string, number>;
  };
  assert.equal(s.status, 'completed');
  assert.equal(s.backend, 'wasm');
  const margin = s.best.metrics.val_fbeta! - s.baseline.val_fbeta;
  assert.ok(
    margin >= 0.02,
    `best val_fbeta ${s.best.metrics.val_fbeta} vs constant top-${s.baseline.constant_top_k} baseline ${s.baseline.val_fbeta} (margin ${margin.toFixed(4)})`,
  );
  assert.ok(Math.abs(s.final.val_fbeta! - s.best.metrics.val_fbeta!) < 1e-4, 'the reloaded best checkpoint scores what its epoch scored');
  assert.ok(existsSync(join(run, 'curves.png')));
  assert.equal((await sharp(join(run, 'curves.png')).metadata()).format, 'png');
  // The last lines say what the run scored (F2 at the configured threshold and with thresholds
  // tuned per tag) and where its results are (they did not: a newcomer had to look for them).
  const lines = r.stdout.trimEnd().split('\n');
  const head = lines.map((l) => l.startsWith('run ')).lastIndexOf(true);
  assert.match(lines[head]!, /^run +status +seconds +val_fbeta +val_fbeta_tuned +note$/);
  const cells = lines[head + 2]!.split(/\s+/);
  assert.deepEqual(cells.slice(0, 2), [run.split('/').at(-1), 'completed']);
  assert.deepEqual(
    cells.slice(3, 5).map(Number),
    [s.final.val_fbeta, s.final.val_fbeta_tuned].map((v) => Number(v!.toFixed(4))),
  );
  assert.equal(lines.at(-1), `Results in ${run}/: summary.json (every number), curves.png (the learning curves), metrics.jsonl (per epoch), train.log`);
});
