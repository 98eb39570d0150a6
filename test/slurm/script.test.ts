/**
 * The pure pieces of the Slurm launcher, without a cluster: the --array list and its throttle,
 * the batch script (options, set-up lines, no environment values), scontrol's task lists, the
 * state shown in exp status, and task maps exp did not write.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { arraySpec, batchScript, describeTask, shellQuote, taskIds } from '../../src/exec/slurm.js';
import { readTaskMap } from '../../src/store/slurm.js';
import { ExpError } from '../../src/errors.js';
import { tempDir } from '../helpers/cli.js';
import type { SlurmOptions } from '../../src/exec/slurm.js';

const options: SlurmOptions = {
  partition: 'gpu',
  account: null,
  qos: null,
  time: '2:00:00',
  cpus_per_task: 8,
  mem: '32G',
  gpus_per_task: 1,
  constraint: null,
  signal_seconds: 300,
  sbatch: ['--exclusive'],
  setup: ['module load cuda/12.2'],
};

test('the --array list is the unfinished points as ranges, with the throttle', () => {
  assert.equal(arraySpec([0, 1, 2, 3], 2), '0-3%2');
  assert.equal(arraySpec([5, 0, 2, 3, 4]), '0,2-5');
  assert.equal(arraySpec([7]), '7');
  assert.deepEqual(taskIds('2-4%2'), [2, 3, 4]);
  assert.deepEqual(taskIds('1,4-5'), [1, 4, 5]);
});

test('the batch script has the options, the set-up lines and the warning signal, and execs exp slurm-task', () => {
  const s = batchScript({ jobName: 'exp-x', sweepDir: "/shared/runs/x/it's", logsDir: '/shared/runs/x/logs', submission: 3, array: '0-3%2', options });
  for (const line of [
    '#SBATCH --array=0-3%2',
    '#SBATCH --signal=B:USR1@300',
    '#SBATCH --requeue',
    '#SBATCH --partition=gpu',
    '#SBATCH --time=2:00:00',
    '#SBATCH --cpus-per-task=8',
    '#SBATCH --mem=32G',
    '#SBATCH --gpus-per-task=1',
    '#SBATCH --exclusive',
    'module load cuda/12.2',
  ])
    assert.ok(s.split('\n').includes(line), `${line}\n${s}`);
  assert.doesNotMatch(s, /--account|--qos|--constraint/);
  assert.ok(s.includes(`SWEEP=${shellQuote("/shared/runs/x/it's")}`));
  assert.match(s, /exec .* slurm-task "\$SWEEP" --submission 3\n$/);
  assert.match(s, /the runs folder must be on a file system every node shares/);
});

test("Slurm's states as exp status shows them", () => {
  assert.equal(describeTask({ state: 'PENDING', reason: 'JobArrayTaskLimit', restarts: 0 }), 'pending (JobArrayTaskLimit)');
  assert.equal(describeTask({ state: 'PENDING', reason: 'BeginTime', restarts: 1 }), 'requeued 1x, pending (BeginTime)');
  assert.equal(describeTask({ state: 'RUNNING', node: 'gpu07', restarts: 0 }), 'running on gpu07');
  assert.equal(describeTask({ state: 'FAILED', reason: 'NonZeroExitCode', restarts: 0 }), 'failed (NonZeroExitCode)');
  assert.equal(describeTask(undefined), 'gone from Slurm');
});

test('a task map exp did not write is SLURM_TASK_INVALID naming the file', () => {
  const sweep = tempDir('exp-slurm-map-');
  mkdirSync(join(sweep, 'slurm'));
  writeFileSync(join(sweep, 'slurm', 'tasks-1.json'), JSON.stringify({ version: 1, submission: 1, tasks: { '0': '../../etc' } }));
  assert.throws(
    () => readTaskMap(sweep, 1),
    (e: unknown) => e instanceof ExpError && e.code === 'SLURM_TASK_INVALID' && e.message.includes('tasks-1.json'),
  );
  assert.throws(
    () => readTaskMap(sweep, 2),
    (e: unknown) => e instanceof ExpError && e.code === 'SLURM_TASK_INVALID' && /shares/.test(e.message),
  );
});
