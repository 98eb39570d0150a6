/**
 * Sweeps on a real one-node Slurm cluster (test/helpers/slurm-cluster.ts: Debian's slurmctld,
 * slurmd and munge, started for this file): `exp run --launcher slurm` submits one job array and
 * the points train in array tasks; a task requeued mid-epoch resumes from its saved position with
 * an uninterrupted run's numbers; a task killed with SIGKILL resumes from its last checkpoint when
 * `exp run` submits again (only the unfinished points); a partition Slurm refuses is a coded error
 * quoting Slurm, and `exp cancel` stops the array with the points killed, resumable.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { spawn } from 'node:child_process';
import { BIN, exp, tempDir } from '../helpers/cli.js';
import { tinyExperiment, trainingBackends } from '../helpers/training.js';
import { startSlurm, type SlurmCluster } from '../helpers/slurm-cluster.js';

let cluster: SlurmCluster;
let tmp: string;
let backend: string;

before(async () => {
  cluster = await startSlurm();
  tmp = tempDir('exp-slurm-test-');
  backend = (await trainingBackends())[0]!;
});
after(async () => {
  await cluster?.stop();
});

/**
 * The requeue and SIGKILL tests act inside epoch 2: their data (a folder of its own, as data.synth
 * generates once per folder) has 14 batches an epoch, so training cannot end before the signal lands.
 */
const LONG_COUNT = 320;
const longData = (): string => {
  const dir = join(tmp, 'long');
  mkdirSync(dir, { recursive: true });
  return dir;
};

/** Every array task prints where training is after each batch (EXP_PROGRESS_SECONDS=0), so a test can act inside an epoch. */
const env = (): Record<string, string> => ({ ...cluster.env, EXP_PROGRESS_SECONDS: '0' });
const json = <T>(p: string): T => JSON.parse(readFileSync(p, 'utf8')) as T;
const read = (p: string): string => (existsSync(p) ? readFileSync(p, 'utf8') : '');
const sweepOf = (runs: string, name: string): string => join(runs, name, readdirSync(join(runs, name))[0]!);
const points = (sweep: string): string[] =>
  readdirSync(sweep, { withFileTypes: true })
    .filter((d) => d.isDirectory() && d.name !== 'slurm')
    .map((d) => join(sweep, d.name))
    .sort();
interface Rec {
  status: string;
  pid?: number;
  attempts: number;
  started?: string;
  ended?: string;
  reason?: string;
  launcher?: { kind: string; worker?: string };
}
const record = (dir: string): Rec | undefined => (existsSync(join(dir, 'run.json')) ? json<Rec>(join(dir, 'run.json')) : undefined);
const metrics = (dir: string): Record<string, number>[] =>
  read(join(dir, 'metrics.jsonl'))
    .trim()
    .split('\n')
    .filter(Boolean)
    .map((l) => JSON.parse(l) as Record<string, number>);
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** Polls for an outcome with a generous deadline (the machine is shared and loaded). */
async function waitFor(what: string, check: () => boolean, ms = 300_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(250);
  }
}

/** A task's JobState as scontrol has it ('' once it is gone). */
const taskState = (task: string): string => /JobState=(\S+)/.exec(cluster.client('/usr/bin/scontrol', ['show', 'job', '-o', task]).stdout)?.[1] ?? '';
const jobOf = (stdout: string): string => {
  const m = /Submitted job array (\d+)/.exec(stdout);
  assert.ok(m, stdout);
  return m[1]!;
};

function assertSameMetrics(got: readonly Record<string, number>[], ref: readonly Record<string, number>[], what: string): void {
  assert.deepEqual(
    got.map((m) => m.epoch),
    ref.map((m) => m.epoch),
    what,
  );
  for (const [i, m] of ref.entries())
    for (const k of ['loss', 'fbeta', 'val_loss', 'val_fbeta'])
      assert.ok(Math.abs(got[i]![k]! - m[k]!) <= 1e-5 * Math.max(1, Math.abs(m[k]!)), `${what} epoch ${m.epoch} ${k}: ${got[i]![k]} vs ${m[k]}`);
}

/** The most run intervals [started, ended] that overlap at any one time. */
function mostAtOnce(recs: readonly Rec[]): number {
  const spans = recs.map((r) => [Date.parse(r.started!), Date.parse(r.ended!)] as const);
  return Math.max(...spans.map(([s]) => spans.filter(([a, b]) => a <= s && s < b).length));
}

const filesUnder = (dir: string): string[] =>
  readdirSync(dir, { withFileTypes: true }).flatMap((d) => (d.isDirectory() ? filesUnder(join(dir, d.name)) : [join(dir, d.name)]));

test('a 4-point sweep with --launcher slurm --workers 2 runs as one array, at most 2 tasks at once, and exp compare shows all 4', { timeout: 900_000 }, () => {
  const secret = 'tok-3c1f9e-never-in-the-folder';
  const file = tinyExperiment(tmp, {
    backend,
    name: 'four',
    epochs: 1,
    extra: 'sweep: { grid: { training.learning_rate: [0.001, 0.0008, 0.0006, 0.0004] } }\nlauncher: { slurm: { cpus_per_task: 1 } }',
  });
  const runs = join(tmp, 'runs-four');
  const r = exp(['run', file, '--runs-dir', runs, '--launcher', 'slurm', '--workers', '2', '--wait'], {
    cwd: tmp,
    env: { ...env(), MLFLOW_TRACKING_TOKEN: secret },
  });
  assert.equal(r.code, 0, r.stdout + r.stderr);
  assert.match(r.stdout, /Submitted job array \d+ \(--array=0-3%2\): 4 points/);
  const sweep = sweepOf(runs, 'four');
  assert.match(read(join(sweep, 'slurm', 'submit-1.sh')), /^#SBATCH --array=0-3%2$/m);
  const recs = points(sweep).map((d) => record(d)!);
  for (const rec of recs) {
    assert.equal(rec.status, 'completed');
    assert.equal(rec.launcher?.kind, 'slurm');
    assert.match(rec.launcher?.worker ?? '', /^slurm job \d+_[0-3] on /);
  }
  assert.ok(mostAtOnce(recs) <= 2, `at most 2 points trained at once (${mostAtOnce(recs)})`);
  const compare = exp(['compare', sweep], { cwd: tmp });
  assert.equal(compare.code, 0, compare.stderr);
  assert.match(compare.stdout, /: 4 points, ranked by/);
  for (const d of points(sweep)) assert.ok(compare.stdout.includes(json<{ key: string }>(join(d, 'point.json')).key), compare.stdout);
  const status = exp(['status', sweep], { cwd: tmp, env: env() });
  assert.equal(status.code, 0, status.stderr);
  assert.equal((status.stdout.match(/ \d+_[0-3] completed/g) ?? []).length, 4, status.stdout);
  // The token reached the jobs through sbatch's environment, never a file of the sweep folder.
  for (const f of filesUnder(sweep)) assert.ok(!readFileSync(f).includes(secret), `${f} holds the secret`);
});

test(
  'scontrol requeue in the middle of an epoch: the point resumes from its saved position, its metrics equal an uninterrupted run to 1e-5',
  { timeout: 900_000 },
  async () => {
    // 14 batches an epoch: the requeue sent at batch 2-3 must land before the epoch ends, on a loaded machine too.
    const file = tinyExperiment(longData(), { backend, name: 'requeue', epochs: 2, count: LONG_COUNT });
    const ref = exp(['run', file, '--runs-dir', join(tmp, 'runs-ref')], { cwd: tmp });
    assert.equal(ref.code, 0, ref.stdout + ref.stderr);
    const runs = join(tmp, 'runs-requeue');
    const r = exp(['run', file, '--runs-dir', runs, '--launcher', 'slurm'], { cwd: tmp, env: env() });
    assert.equal(r.code, 0, r.stdout + r.stderr);
    const job = jobOf(r.stdout);
    const sweep = sweepOf(runs, 'requeue');
    const log = join(sweep, 'slurm', 'logs', `${job}_0.out`);
    await waitFor('epoch 2, batch 2 in the task log', () => /^progress: epoch 2\/2 batch [2-3]\//m.test(read(log)));
    const q = cluster.client('/usr/bin/scontrol', ['requeue', `${job}_0`]);
    assert.equal(q.code, 0, q.stderr);
    const dir = points(sweep)[0]!;
    await waitFor('the requeued task to finish the point', () => record(dir)?.status === 'completed' && taskState(`${job}_0`) === 'COMPLETED');
    const ended = read(join(dir, 'events.jsonl'))
      .split('\n')
      .filter((l) => l.includes('"run_ended"'));
    assert.equal(ended.length, 2, ended.join('\n'));
    assert.match(ended[0]!, /"killed".*during epoch 2, after batch \d+ of 14/);
    assert.match(read(log), /inside epoch 2, after batch \d+/);
    assert.equal(record(dir)!.attempts, 2);
    assertSameMetrics(metrics(dir), metrics(points(sweepOf(join(tmp, 'runs-ref'), 'requeue'))[0]!), 'requeued');
  },
);

test(
  'a task killed outright (SIGKILL, as the OOM killer or a node failure): exp run again submits only the unfinished point, which resumes from its last checkpoint',
  { timeout: 900_000 },
  async () => {
    // Point 1 (learning_rate 0.001) is the requeue test's uninterrupted reference point (the name is not in the run key).
    const file = tinyExperiment(longData(), {
      backend,
      name: 'killed',
      epochs: 2,
      count: LONG_COUNT,
      extra: 'sweep: { grid: { training.learning_rate: [0.0005, 0.001] } }',
    });
    const runs = join(tmp, 'runs-killed');
    const r = exp(['run', file, '--runs-dir', runs, '--launcher', 'slurm', '--workers', '1'], { cwd: tmp, env: env() });
    assert.equal(r.code, 0, r.stdout + r.stderr);
    const job = jobOf(r.stdout);
    const sweep = sweepOf(runs, 'killed');
    const [first, second] = points(sweep).sort(
      (a, b) => json<{ index: number }>(join(a, 'point.json')).index - json<{ index: number }>(join(b, 'point.json')).index,
    );
    const log = join(sweep, 'slurm', 'logs', `${job}_1.out`);
    await waitFor('epoch 2 of point 1 under way', () => /^progress: epoch 2\/2 batch [2-3]\//m.test(read(log)));
    assert.equal(record(first!)!.status, 'completed');
    // Slurm 22.05 turns scancel --signal=KILL into a cancel (SIGTERM first: the point would save its position), so the
    // test kills the task's processes itself: the task first (stopped, so it records nothing), then the trainer.
    const trainer = record(second!)!.pid!;
    const task = Number(readFileSync(`/proc/${trainer}/stat`, 'utf8').split(') ')[1]!.split(' ')[1]);
    process.kill(task, 'SIGSTOP');
    process.kill(trainer, 'SIGKILL');
    process.kill(task, 'SIGKILL');
    await waitFor('the killed task to leave the queue', () => !['RUNNING', 'COMPLETING', 'PENDING'].includes(taskState(`${job}_1`)));
    assert.equal(record(second!)!.status, 'running', 'a SIGKILLed process records nothing');
    // The dead trainer is gone once its new parent has reaped it (until then the kernel still lists its pid).
    await waitFor('the killed trainer to be reaped', () => !existsSync(`/proc/${trainer}`));
    const shown = exp(['status', sweep], { cwd: tmp, env: env() });
    assert.match(shown.stdout, /interrupted/, shown.stdout);

    const again = exp(['run', file, '--runs-dir', runs, '--launcher', 'slurm', '--wait'], { cwd: tmp, env: env() });
    assert.equal(again.code, 0, again.stdout + again.stderr);
    assert.match(again.stdout, /Submitted job array \d+ \(--array=1\): 1 point; 1 ended or queued before, not submitted/);
    assert.equal(record(first!)!.attempts, 1, 'the finished point is not trained again');
    assert.equal(record(second!)!.status, 'completed');
    assert.match(read(join(second!, 'train.log')), /after epoch 1/);
    assertSameMetrics(metrics(second!), metrics(points(sweepOf(join(tmp, 'runs-ref'), 'requeue'))[0]!), 'killed and resumed');
  },
);

test(
  'a partition Slurm refuses is SLURM_SUBMIT quoting sbatch, nothing is lost; exp cancel stops the array, the point ends killed',
  { timeout: 900_000 },
  async () => {
    const file = tinyExperiment(tmp, { backend, name: 'cancel', epochs: 2 });
    const runs = join(tmp, 'runs-cancel');
    const bad = exp(['run', file, '--runs-dir', runs, '--launcher', 'slurm', '--set', 'launcher.slurm.partition=nosuch'], { cwd: tmp, env: env() });
    assert.equal(bad.code, 1, bad.stdout + bad.stderr);
    assert.match(bad.stderr, /sbatch refused the sweep's job array: sbatch: error: .*invalid partition/i);
    assert.match(bad.stderr, /\[SLURM_SUBMIT\]/);
    const sweep = sweepOf(runs, 'cancel');
    const dir = points(sweep)[0]!;
    for (const f of ['config.yaml', 'point.json']) assert.ok(statSync(join(dir, f)).size > 0, f);
    assert.match(read(join(sweep, 'slurm', 'submit-1.sh')), /--partition=nosuch/, 'the refused script is kept');
    assert.ok(!existsSync(join(sweep, 'slurm', 'jobs.json')), 'no submission recorded');

    const r = exp(['run', file, '--runs-dir', runs, '--launcher', 'slurm'], { cwd: tmp, env: env() });
    assert.equal(r.code, 0, r.stdout + r.stderr);
    assert.match(read(join(sweep, 'slurm', 'submit-2.sh')), /--array=0$/m);
    const job = jobOf(r.stdout);
    await waitFor('training under way', () => /^progress: epoch 1\/2 batch [1-3]\//m.test(read(join(sweep, 'slurm', 'logs', `${job}_0.out`))));
    const c = exp(['cancel', sweep], { cwd: tmp, env: env() });
    assert.equal(c.code, 0, c.stdout + c.stderr);
    assert.match(c.stdout, new RegExp(`Cancelled job ${job}`));
    assert.equal(record(dir)!.status, 'killed');
    assert.match(record(dir)!.reason ?? '', /it resumes from there/);
    assert.match(exp(['status', sweep], { cwd: tmp, env: env() }).stdout, new RegExp(`${job}_0 cancelled`));
  },
);

/** `exp ARGS` as its own process, without blocking this one (two submitters at once). */
const expAsync = (args: string[], pathFirst: string): Promise<{ code: number | null; out: string }> =>
  new Promise((resolve) => {
    const e = { ...process.env, ...env(), PATH: `${pathFirst}:${process.env.PATH ?? ''}` };
    const p = spawn(process.execPath, [BIN, ...args], { cwd: tmp, env: e, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    p.stdout.on('data', (b: Buffer) => (out += b.toString()));
    p.stderr.on('data', (b: Buffer) => (out += b.toString()));
    p.on('close', (code) => resolve({ code, out }));
  });

test('two exp run --launcher slurm started at once submit each point once: one array, the other finds them queued', { timeout: 900_000 }, async () => {
  const file = tinyExperiment(tmp, { backend, name: 'twice', epochs: 1, extra: 'sweep: { grid: { training.learning_rate: [0.001, 0.002, 0.003] } }' });
  const runs = join(tmp, 'runs-twice');
  // An sbatch that takes 3 s to answer (a busy controller): without the submission lock both submitters read "nothing queued" meanwhile.
  const slow = join(tmp, 'slow-sbatch');
  mkdirSync(slow, { recursive: true });
  writeFileSync(join(slow, 'sbatch'), '#!/bin/sh\nsleep 3\nexec /usr/bin/sbatch "$@"\n', { mode: 0o755 });
  const args = ['run', file, '--runs-dir', runs, '--launcher', 'slurm'];
  const both = await Promise.all([expAsync(args, slow), expAsync(args, slow)]);
  for (const r of both) assert.equal(r.code, 0, r.out);
  assert.equal(both.filter((r) => /Submitted job array/.test(r.out)).length, 1, both.map((r) => r.out).join('\n---\n'));
  assert.equal(both.filter((r) => /Nothing to submit: every point has ended or is queued in Slurm \(3 queued or running\)/.test(r.out)).length, 1);
  const sweep = sweepOf(runs, 'twice');
  const follow = exp([...args, '--wait'], { cwd: tmp, env: env() });
  assert.equal(follow.code, 0, follow.stdout + follow.stderr);
  assert.equal(json<{ submissions: unknown[] }>(join(sweep, 'slurm', 'jobs.json')).submissions.length, 1);
  assert.ok(!existsSync(join(sweep, 'slurm', 'submit-2.sh')));
  for (const dir of points(sweep)) assert.deepEqual([record(dir)?.status, record(dir)?.attempts], ['completed', 1], dir);
});
