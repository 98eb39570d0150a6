/**
 * A small sweep three ways, as whole processes: `exp run --workers 1`, `exp run --workers 2`,
 * and through the queue (`exp run --queue --detach`, then one `exp worker`), to show what
 * parallel workers buy on this machine and what the queue costs per point.
 */
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { log, tempDir } from './measure.js';
import type { Column, Row } from './table.js';

const ROOT = new URL('..', import.meta.url).pathname;
const BIN = join(ROOT, 'bin', 'exp.js');
const REDIS = ['/usr/bin/redis-server', '/usr/local/bin/redis-server'].find((p) => existsSync(p));
/** `exp worker --exit-when-idle` waits this long with an empty queue before it exits. */
const IDLE_TAIL_S = 3;

export const SWEEP_COLUMNS: Column[] = [
  { key: 'name', title: 'how', align: 'left' },
  { key: 'points', title: 'points' },
  { key: 'seconds', title: 'wall s', digits: 1 },
  { key: 'per_point_s', title: 's per point', digits: 2 },
  { key: 'vs_local', title: 'x workers 1', digits: 2 },
  { key: 'overhead_s', title: 'queue overhead s/point', digits: 2 },
];

const freePort = (): Promise<number> =>
  new Promise((res) => {
    const s = createServer();
    s.listen(0, '127.0.0.1', () => {
      const p = (s.address() as { port: number }).port;
      s.close(() => res(p));
    });
  });

function run(args: string[], cwd: string): number {
  const t0 = performance.now();
  const r = spawnSync(process.execPath, [BIN, ...args], {
    cwd,
    stdio: ['ignore', 'ignore', 'pipe'],
    encoding: 'utf8',
    env: { ...process.env, MLFLOW_TRACKING_URI: '' },
  });
  if (r.status !== 0) throw new Error(`exp ${args.join(' ')}: exit ${r.status}: ${r.stderr.slice(-400)}`);
  return (performance.now() - t0) / 1000;
}

export async function benchSweep(opts: { points: number; epochs: number }): Promise<{ rows: Row[]; notes: string[] }> {
  const dir = tempDir('exp-bench-sweep-');
  const lrs = Array.from({ length: opts.points }, (_, i) => (0.001 / (i + 1)).toPrecision(3));
  writeFileSync(
    join(dir, 's.yaml'),
    [
      'name: s',
      'data: { path: ./data, image_size: 32, resize: bilinear, synth: { count: 120, seed: 0, size: 64 } }',
      'model: { weights: none, head: { units: 32 } }',
      `training: { batch_size: 16, epochs: ${opts.epochs} }`,
      `sweep: { grid: { training.learning_rate: [${lrs.join(', ')}] } }`,
    ].join('\n') + '\n',
  );
  run(['run', 's.yaml', '--runs-dir', join(dir, 'warm'), '--set', 'training.learning_rate=0.001'], dir); // data made and cached
  const rows: Row[] = [];
  log('sweep: --workers 1');
  const one = run(['run', 's.yaml', '--runs-dir', join(dir, 'w1')], dir);
  rows.push({ section: 'sweep', name: 'exp run --workers 1', points: opts.points, seconds: one, per_point_s: one / opts.points, vs_local: 1 });
  log('sweep: --workers 2');
  const two = run(['run', 's.yaml', '--runs-dir', join(dir, 'w2'), '--workers', '2'], dir);
  rows.push({ section: 'sweep', name: 'exp run --workers 2', points: opts.points, seconds: two, per_point_s: two / opts.points, vs_local: one / two });
  const notes = [
    'vs workers 1 = speed-up. Both cores are busy with one point already (native TensorFlow uses 2 threads), so two at once gain little here; on a GPU machine each gets its own GPU.',
  ];
  if (!REDIS) {
    notes.push('queue: redis-server is not installed here, so the queue row is left out.');
    return { rows, notes };
  }
  const port = await freePort();
  const redis = spawn(REDIS, ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--dir', dir], { stdio: 'ignore' });
  try {
    await new Promise((r) => setTimeout(r, 500));
    log('sweep: through the queue, one worker');
    const url = `redis://127.0.0.1:${port}`;
    const t0 = performance.now();
    run(['run', 's.yaml', '--runs-dir', join(dir, 'q-sub'), '--queue', url, '--detach'], dir);
    run(['worker', '--queue', url, '--runs-dir', join(dir, 'q-work'), '--exit-when-idle'], dir);
    const q = (performance.now() - t0) / 1000 - IDLE_TAIL_S;
    rows.push({
      section: 'sweep',
      name: 'exp run --queue + 1 exp worker',
      points: opts.points,
      seconds: q,
      per_point_s: q / opts.points,
      vs_local: one / q,
      overhead_s: (q - one) / opts.points,
    });
    notes.push(
      `queue: submit, then one worker until the queue is empty (minus its ${IDLE_TAIL_S} s idle wait before exiting); overhead = (queue - workers 1) / points (target < 1 s a point).`,
    );
  } finally {
    redis.kill('SIGKILL');
    rmSync(join(dir, 'dump.rdb'), { force: true });
  }
  return { rows, notes };
}
