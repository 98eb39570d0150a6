/**
 * The user config on a real one-node Slurm cluster (test/helpers/slurm-cluster.ts): an
 * experiment with no launcher section is submitted with the user's partition, #SBATCH lines and
 * set-up lines; a partition in the user config reaches sbatch (Slurm refuses an unknown one);
 * the experiment file's launcher section wins over the user config. Every job is submitted held
 * (--hold, from the user config's sbatch list), so nothing trains; stop() cancels them.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { exp, tempDir } from '../helpers/cli.js';
import { tinyExperiment, trainingBackends } from '../helpers/training.js';
import { startSlurm, type SlurmCluster } from '../helpers/slurm-cluster.js';

let cluster: SlurmCluster;
let tmp: string;
let backend: string;

before(async () => {
  cluster = await startSlurm();
  tmp = tempDir('exp-slurm-user-config-');
  backend = (await trainingBackends())[0]!;
});
after(async () => {
  await cluster?.stop();
});

/** Writes a user config and returns the environment that names it. */
function userConfig(name: string, text: string): Record<string, string> {
  const file = join(tmp, `${name}.config.yaml`);
  writeFileSync(file, text);
  return { ...cluster.env, EXP_CONFIG: file };
}
const scriptOf = (stdout: string): string => {
  const m = /^ {2}script (\S+), logs /m.exec(stdout);
  assert.ok(m, stdout);
  return readFileSync(resolve(tmp, m[1]!), 'utf8');
};
const jobOf = (stdout: string): string => {
  const m = /Submitted job array (\d+)/.exec(stdout);
  assert.ok(m, stdout);
  return m[1]!;
};

test('an experiment with no launcher section is submitted with the user config partition, #SBATCH and set-up lines', { timeout: 300_000 }, () => {
  const env = userConfig(
    'good',
    `launcher:\n  slurm:\n    partition: ${cluster.partition}\n    cpus_per_task: 1\n    sbatch: ["--hold"]\n    setup: ["echo set-up from the user config"]\n`,
  );
  const file = tinyExperiment(tmp, { backend, name: 'bare', epochs: 1 });
  const r = exp(['run', file, '--runs-dir', join(tmp, 'runs'), '--launcher', 'slurm'], { cwd: tmp, env });
  assert.equal(r.code, 0, r.stdout + r.stderr);
  assert.match(r.stdout, /^ {2}launcher defaults from .*good\.config\.yaml$/m);
  const lines = scriptOf(r.stdout).split('\n');
  for (const line of [`#SBATCH --partition=${cluster.partition}`, '#SBATCH --cpus-per-task=1', '#SBATCH --hold', 'echo set-up from the user config'])
    assert.ok(lines.includes(line), `${line}\n${lines.join('\n')}`);
  const job = cluster.client('/usr/bin/scontrol', ['show', 'job', '-o', jobOf(r.stdout)]).stdout;
  assert.match(job, new RegExp(`Partition=${cluster.partition}\\b`));
  assert.match(job, /JobState=PENDING/);
});

test("the user config's partition reaches sbatch; the experiment file's launcher section wins over it", { timeout: 300_000 }, () => {
  const env = userConfig('nosuch', 'launcher:\n  slurm:\n    partition: nosuch\n    cpus_per_task: 1\n    sbatch: ["--hold"]\n');
  const refused = exp(['run', tinyExperiment(tmp, { backend, name: 'refused', epochs: 1 }), '--runs-dir', join(tmp, 'runs'), '--launcher', 'slurm'], {
    cwd: tmp,
    env,
  });
  assert.equal(refused.code, 1, refused.stdout + refused.stderr);
  assert.match(refused.stderr, /sbatch: error: invalid partition specified: nosuch/i);
  assert.match(refused.stderr, /\[SLURM_SUBMIT\]/);

  const own = tinyExperiment(tmp, { backend, name: 'own', epochs: 1, extra: `launcher: { slurm: { partition: ${cluster.partition} } }` });
  const r = exp(['run', own, '--runs-dir', join(tmp, 'runs'), '--launcher', 'slurm'], { cwd: tmp, env });
  assert.equal(r.code, 0, r.stdout + r.stderr);
  const lines = scriptOf(r.stdout).split('\n');
  assert.ok(lines.includes(`#SBATCH --partition=${cluster.partition}`), lines.join('\n'));
  assert.ok(lines.includes('#SBATCH --hold'), 'the keys the experiment does not set stay the user config’s');
  assert.ok(!lines.some((l) => l.includes('nosuch')));
  assert.match(cluster.client('/usr/bin/scontrol', ['show', 'job', '-o', jobOf(r.stdout)]).stdout, /JobState=PENDING/);
});
