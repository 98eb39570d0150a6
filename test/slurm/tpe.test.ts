/**
 * TPE studies (sweep.tpe) on a real one-node Slurm cluster (test/helpers/slurm-cluster.ts):
 * `exp run --launcher slurm` proposes each point from the results known then and submits it as
 * its own job, at most --workers at once; a second submitter is LOCKED out; the proposer SIGKILLed
 * mid-study, or between sbatch and recording the job, is continued by running it again with no
 * proposal lost or given a second job; `exp cancel` ends the proposer with 130 and the points
 * killed, resumable; sweep.budget stops the study with exit 0 and stopped.json.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
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
  tmp = tempDir('exp-slurm-tpe-');
  backend = (await trainingBackends())[0]!;
});
after(async () => {
  await cluster?.stop();
});

const env = (extra: Record<string, string> = {}): Record<string, string> => ({ ...cluster.env, EXP_PROGRESS_SECONDS: '0', EXP_TEST: '1', ...extra });
const json = <T>(p: string): T => JSON.parse(readFileSync(p, 'utf8')) as T;
const read = (p: string): string => (existsSync(p) ? readFileSync(p, 'utf8') : '');
const sweepOf = (runs: string, name: string): string | undefined =>
  existsSync(join(runs, name)) && readdirSync(join(runs, name)).length > 0 ? join(runs, name, readdirSync(join(runs, name))[0]!) : undefined;
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

interface Proposal {
  type: 'proposal';
  index: number;
  dir: string;
  sampler: string;
  known: { index: number; state: string }[];
  duplicate_of?: number;
}
const journal = (sweep: string): { type: string }[] =>
  read(join(sweep, 'study.jsonl'))
    .split('\n')
    .filter((l) => l.trim())
    .flatMap((l) => {
      try {
        return [JSON.parse(l) as { type: string }];
      } catch {
        return []; // a line being written
      }
    });
const proposals = (sweep: string): Proposal[] => journal(sweep).filter((e): e is Proposal => e.type === 'proposal');
interface Rec {
  status: string;
  attempts: number;
  started?: string;
  ended?: string;
  launcher?: { kind: string; worker?: string };
}
const record = (dir: string): Rec | undefined => (existsSync(join(dir, 'run.json')) ? json<Rec>(join(dir, 'run.json')) : undefined);
interface Sub {
  n: number;
  job_id: string;
  tasks: Record<string, string>;
}
const submissions = (sweep: string): Sub[] =>
  existsSync(join(sweep, 'slurm', 'jobs.json')) ? json<{ submissions: Sub[] }>(join(sweep, 'slurm', 'jobs.json')).submissions : [];
/** The jobs Slurm knows by a proposal's name (every state slurmctld still holds: MinJobAge is an hour here). */
const jobsNamed = (sweep: string, index: number): string[] => {
  const name = `exp-${sweep.split('/').at(-2)}-${sweep.split('/').at(-1)}-p${index}`;
  return cluster.client('/usr/bin/squeue', ['-h', '-t', 'all', '-n', name, '-o', '%F']).stdout.split('\n').filter(Boolean);
};

/** Polls for an outcome with a generous deadline (the machine is shared and loaded). */
async function until<T>(what: string, f: () => T | undefined | false, ms = 300_000): Promise<T> {
  const deadline = Date.now() + ms;
  for (;;) {
    const v = f();
    if (v !== undefined && v !== false) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(250);
  }
}

/** `exp ARGS` as a child this test can signal; `done` resolves with its exit and output. */
function spawnExp(args: string[], extra: Record<string, string> = {}) {
  const child = spawn(process.execPath, [BIN, ...args], { cwd: tmp, env: { ...process.env, ...env(extra) }, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  child.stdout.on('data', (d: Buffer) => (out += d));
  child.stderr.on('data', (d: Buffer) => (out += d));
  const done = new Promise<{ code: number | null; signal: NodeJS.Signals | null; out: string }>((r) =>
    child.once('exit', (code, signal) => r({ code, signal, out })),
  );
  return { child, done, out: () => out };
}

const COUNT = 4;
const studyFile = (name: string, epochs: number, extra = ''): string =>
  tinyExperiment(tmp, {
    backend,
    name,
    epochs,
    extra: [
      'launcher: { slurm: { cpus_per_task: 1 } }',
      'sweep:',
      '  tpe:',
      `    count: ${COUNT}`,
      '    startup: 2',
      '    seed: 3',
      '    params:',
      '      training.learning_rate: { distribution: log_uniform, low: 0.0001, high: 0.01 }',
      '      model.head.units: { distribution: int_uniform, low: 8, high: 64 }',
      extra,
    ].join('\n'),
  });

/** The most run intervals [started, ended] that overlap at any one time. */
function mostAtOnce(recs: readonly Rec[]): number {
  const spans = recs.map((r) => [Date.parse(r.started!), Date.parse(r.ended!)] as const);
  return Math.max(...spans.map(([s]) => spans.filter(([a, b]) => a <= s && s < b).length));
}

/** Every proposal has exactly one job (in jobs.json and in Slurm by name) and its point completed, trained in `attempts` attempts. */
function assertOneJobEach(sweep: string, attempts?: number): void {
  const ps = proposals(sweep);
  assert.equal(ps.length, COUNT, 'count proposals in all');
  assert.deepEqual(
    ps.map((p) => p.index),
    [0, 1, 2, 3],
  );
  const subs = submissions(sweep);
  for (const p of ps) {
    const mine = subs.filter((s) => Object.values(s.tasks).includes(p.dir));
    assert.equal(mine.length, 1, `one recorded job for ${p.dir}: ${JSON.stringify(subs)}`);
    assert.deepEqual(jobsNamed(sweep, p.index), [mine[0]!.job_id], `one job in Slurm for proposal ${p.index}`);
    const rec = record(join(sweep, p.dir))!;
    assert.equal(rec.status, 'completed', p.dir);
    if (attempts !== undefined) assert.equal(rec.attempts, attempts, `${p.dir} trained once`);
  }
}

test(
  'a TPE study with --launcher slurm --workers 2: one job per proposal, at most 2 at once, later proposals know earlier results; a second submitter is LOCKED',
  { timeout: 900_000 },
  async () => {
    const file = studyFile('tpes', 1);
    const runs = join(tmp, 'runs-tpes');
    const first = spawnExp(['run', file, '--runs-dir', runs, '--launcher', 'slurm', '--workers', '2']);
    const sweep = await until('the first proposal', () => {
      const s = sweepOf(runs, 'tpes');
      return s && proposals(s).length > 0 ? s : undefined;
    });
    const second = exp(['run', file, '--runs-dir', runs, '--launcher', 'slurm', '--workers', '2'], { cwd: tmp, env: env() });
    assert.equal(second.code, 1, second.stdout + second.stderr);
    assert.match(second.stderr, /\[LOCKED\]/);
    const r = await first.done;
    assert.equal(r.code, 0, r.out);
    assertOneJobEach(sweep, 1);
    const ps = proposals(sweep);
    for (const p of ps)
      assert.deepEqual(
        p.known.map((k) => k.index),
        Array.from({ length: p.index }, (_, i) => i),
        'each proposal knew every earlier one',
      );
    // The third is made once a slot frees, when a start-up point has ended; the last is TPE's.
    assert.ok(
      ps[2]!.known.some((k) => k.state === 'complete'),
      JSON.stringify(ps[2]!.known),
    );
    assert.equal(ps.at(-1)!.sampler, 'tpe');
    const recs = ps.map((p) => record(join(sweep, p.dir))!);
    for (const [i, rec] of recs.entries()) {
      assert.equal(rec.launcher?.kind, 'slurm');
      assert.match(rec.launcher?.worker ?? '', new RegExp(`^slurm job \\d+_${ps[i]!.index} on `));
    }
    assert.ok(mostAtOnce(recs) <= 2, `at most 2 points trained at once (${mostAtOnce(recs)})`);
    const sub = submissions(sweep)[0]!;
    assert.match(read(join(sweep, 'slurm', `submit-${sub.n}.sh`)), new RegExp(`^#SBATCH --job-name=exp-tpes-${sweep.split('/').at(-1)}-p0$`, 'm'));
    const compare = exp(['compare', sweep], { cwd: tmp });
    assert.equal(compare.code, 0, compare.stderr);
    assert.match(compare.stdout, /: 4 points, ranked by/);
    const status = exp(['status', sweep], { cwd: tmp, env: env() });
    assert.equal(status.code, 0, status.stderr);
    assert.equal((status.stdout.match(/ \d+_[0-3] completed/g) ?? []).length, 4, status.stdout);
  },
);

test(
  'the proposer SIGKILLed mid-study: running it again follows the jobs in Slurm and finishes the study, one job per proposal',
  { timeout: 900_000 },
  async () => {
    const file = studyFile('tpekill', 2);
    const runs = join(tmp, 'runs-tpekill');
    const first = spawnExp(['run', file, '--runs-dir', runs, '--launcher', 'slurm', '--workers', '2']);
    const sweep = await until('two proposals, one submitted', () => {
      const s = sweepOf(runs, 'tpekill');
      return s && proposals(s).length >= 2 && submissions(s).length >= 1 ? s : undefined;
    });
    first.child.kill('SIGKILL');
    const killed = await first.done;
    assert.equal(killed.signal, 'SIGKILL');
    const before = proposals(sweep);
    assert.ok(before.length < COUNT, 'killed before the study ended');
    const r = exp(['run', file, '--runs-dir', runs, '--launcher', 'slurm', '--workers', '2'], { cwd: tmp, env: env() });
    assert.equal(r.code, 0, r.stdout + r.stderr);
    assert.match(r.stdout, /proposed so far, continuing/);
    assert.deepEqual(
      proposals(sweep)
        .slice(0, before.length)
        .map((p) => p.dir),
      before.map((p) => p.dir),
      'the proposals made before the kill are kept',
    );
    // The killed proposer's jobs went on in Slurm: followed, not submitted again, and no point trained twice.
    assertOneJobEach(sweep, 1);
  },
);

test(
  'the proposer killed between sbatch and recording the job: the rerun adopts the job found by its name; killed before sbatch: the rerun submits it',
  { timeout: 900_000 },
  async () => {
    const file = studyFile('tpeadopt', 1);
    const runs = join(tmp, 'runs-tpeadopt');
    const args = ['run', file, '--runs-dir', runs, '--launcher', 'slurm'];
    const a = await spawnExp(args, { EXP_TEST_STUDY_SLURM_DIE: 'after-sbatch:1' }).done;
    assert.equal(a.signal, 'SIGKILL', a.out);
    const sweep = sweepOf(runs, 'tpeadopt')!;
    const p1 = proposals(sweep)[1]!;
    assert.ok(!submissions(sweep).some((s) => Object.values(s.tasks).includes(p1.dir)), 'no record of the job sbatch accepted');
    const [job] = jobsNamed(sweep, 1);
    assert.ok(job, 'Slurm has the job');

    const b = await spawnExp(args, { EXP_TEST_STUDY_SLURM_DIE: 'before-sbatch:2' }).done;
    assert.equal(b.signal, 'SIGKILL', b.out);
    assert.match(b.out, new RegExp(`${p1.dir}: adopted job ${job}`));
    assert.equal(proposals(sweep).length, 3, 'proposal 2 journaled before its sbatch');
    assert.deepEqual(jobsNamed(sweep, 2), [], 'and never submitted');

    const c = exp(args, { cwd: tmp, env: env() });
    assert.equal(c.code, 0, c.stdout + c.stderr);
    assert.doesNotMatch(c.stdout, /adopted/);
    assertOneJobEach(sweep, 1);
    assert.equal(submissions(sweep).find((s) => Object.values(s.tasks).includes(p1.dir))!.job_id, job);
  },
);

test('exp cancel during the study: the proposer exits 130 and the points end killed; running it again finishes them', { timeout: 900_000 }, async () => {
  const file = studyFile('tpecancel', 2);
  const runs = join(tmp, 'runs-tpecancel');
  const args = ['run', file, '--runs-dir', runs, '--launcher', 'slurm', '--workers', '2'];
  const first = spawnExp(args);
  const sweep = await until('two points training', () => {
    const s = sweepOf(runs, 'tpecancel');
    const subs = s ? submissions(s) : [];
    const training = subs.filter((x) =>
      /^progress: epoch 1\/2 batch [1-3]\//m.test(read(join(s!, 'slurm', 'logs', `${x.job_id}_${Object.keys(x.tasks)[0]}.out`))),
    );
    return training.length >= 2 ? s : undefined;
  });
  const c = exp(['cancel', sweep], { cwd: tmp, env: env() });
  assert.equal(c.code, 0, c.stdout + c.stderr);
  assert.match(c.stdout, /Cancelled jobs? /);
  const r = await first.done;
  assert.equal(r.code, 130, r.out);
  assert.match(r.out, /was cancelled.*Resume with: exp run /s);
  const made = proposals(sweep);
  assert.ok(made.length < COUNT, 'no proposal after the cancel');
  const started = made.filter((p) => (record(join(sweep, p.dir))?.attempts ?? 0) > 0);
  assert.ok(started.length >= 2);
  // The point that started first may have finished by the time the second one reached its first batches: that is no cut.
  const cut = started.filter((p) => record(join(sweep, p.dir))!.status !== 'completed');
  assert.ok(cut.length >= 1, 'a point was training when the study was cancelled');
  for (const p of cut) assert.equal(record(join(sweep, p.dir))!.status, 'killed', p.dir);

  const again = exp(args, { cwd: tmp, env: env() });
  assert.equal(again.code, 0, again.stdout + again.stderr);
  const ps = proposals(sweep);
  assert.equal(ps.length, COUNT);
  for (const p of ps) assert.equal(record(join(sweep, p.dir))!.status, 'completed', p.dir);
  // The cancelled points resumed (a second attempt), each from a second job; the rest had one.
  for (const p of cut) {
    assert.equal(record(join(sweep, p.dir))!.attempts, 2, p.dir);
    assert.equal(submissions(sweep).filter((s) => Object.values(s.tasks).includes(p.dir)).length, 2);
  }
});

test('sweep.budget.points: 2 stops the study at 2 points with exit 0 and stopped.json', { timeout: 900_000 }, () => {
  const file = studyFile('tpebudget', 1, '  budget: { points: 2 }');
  const runs = join(tmp, 'runs-tpebudget');
  const r = exp(['run', file, '--runs-dir', runs, '--launcher', 'slurm', '--workers', '1'], { cwd: tmp, env: env() });
  assert.equal(r.code, 0, r.stdout + r.stderr);
  assert.match(r.stdout, /Stopped by its budget: budget spent: 2 points started \(sweep.budget.points 2\)/);
  const sweep = sweepOf(runs, 'tpebudget')!;
  assert.equal(proposals(sweep).length, 2);
  assert.equal(submissions(sweep).length, 2);
  assert.ok(journal(sweep).some((e) => e.type === 'stop'));
  const stop = json<{ reason: string; best?: { run: string } }>(join(sweep, 'stopped.json'));
  assert.match(stop.reason, /2 points started/);
  assert.ok(proposals(sweep).some((p) => p.dir === stop.best?.run));
  for (const p of proposals(sweep)) assert.equal(record(join(sweep, p.dir))!.status, 'completed');
});
