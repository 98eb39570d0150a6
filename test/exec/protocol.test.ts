/**
 * The launcher-child contract (src/exec/protocol.ts): the launch settings travel as one checked
 * object in EXP_LAUNCH (a bad value is a coded error, never a silent default), and the exit
 * statuses a launcher reads back come from EXIT. The second Ctrl-C's immediate exit (130) is the
 * CLI's, after the trainer has recorded the end.
 */
import { before, test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { exp, expIn, tempDir } from '../helpers/cli.js';
import { tinyExperiment, trainingBackends } from '../helpers/training.js';
import { spawnTrain } from '../../src/exec/child.js';
import { EXIT, LAUNCH_VAR, launchEnv, readLaunchSettings, type LaunchSettings } from '../../src/exec/protocol.js';
import { ExpError } from '../../src/errors.js';
import { readEvents } from '../../src/track/events.js';
import { runFolderBusy } from '../../src/store/run.js';

let tmp: string;
let backend: string;

before(async () => {
  tmp = tempDir('exp-protocol-');
  backend = (await trainingBackends())[0]!;
});

const QUEUED: LaunchSettings = { launcher: 'queue', worker: 'host-a:41', uploadCheckpoints: true, holdEpochs: [1, 2, 4], pinTracking: true };

/** A planned run folder of a tiny experiment (exp run --dry-run). */
async function plannedFolder(name: string, epochs: number): Promise<string> {
  const file = tinyExperiment(tmp, { backend, name, epochs });
  const runs = join(tmp, `runs-${name}`);
  const planned = await expIn(['run', file, '--runs-dir', runs, '--dry-run'], { cwd: tmp });
  assert.equal(planned.code, 0, planned.stderr);
  const sweep = join(runs, name, readdirSync(join(runs, name))[0]!);
  return join(sweep, readdirSync(sweep, { withFileTypes: true }).find((d) => d.isDirectory())!.name);
}

test('the launch settings come back from EXP_LAUNCH as the launcher wrote them; without it no launcher started the child', () => {
  assert.deepEqual(readLaunchSettings({ ...launchEnv(QUEUED) }), QUEUED);
  const local: LaunchSettings = { launcher: 'local', uploadCheckpoints: false, holdEpochs: [], pinTracking: false };
  assert.deepEqual(readLaunchSettings(launchEnv(local)), local);
  assert.equal(readLaunchSettings({}), undefined);
  assert.equal(readLaunchSettings({ [LAUNCH_VAR]: '' }), undefined);
});

test('a malformed EXP_LAUNCH is LAUNCH_SETTINGS_INVALID (invalid input), never a silent default', () => {
  const bad: [string, RegExp][] = [
    ['1,2', /not JSON/],
    ['[]', /not a JSON object/],
    [JSON.stringify({ ...QUEUED, holdEpochs: '1,2' }), /holdEpochs/],
    [JSON.stringify({ ...QUEUED, holdEpochs: [2, 1] }), /ascending/],
    [JSON.stringify({ ...QUEUED, holdEpochs: Array.from({ length: 65 }, (_, i) => i + 1) }), /at most 64/],
    [JSON.stringify({ ...QUEUED, holdEpochs: [0] }), /holdEpochs/],
    [JSON.stringify({ ...QUEUED, launcher: 'pbs' }), /launcher/],
    [JSON.stringify({ ...QUEUED, uploadCheckpoints: '1' }), /uploadCheckpoints/],
    [JSON.stringify({ ...QUEUED, pinTracking: undefined }), /pinTracking/],
    [JSON.stringify({ ...QUEUED, worker: '' }), /worker/],
    [JSON.stringify({ ...QUEUED, extra: 1 }), /unknown key "extra"/],
    [JSON.stringify({ ...QUEUED, worker: 'w'.repeat(20_000) }), /characters/],
  ];
  for (const [text, why] of bad) {
    assert.throws(
      () => readLaunchSettings({ [LAUNCH_VAR]: text }),
      (e: unknown) => e instanceof ExpError && e.code === 'LAUNCH_SETTINGS_INVALID' && e.exit === 'invalid' && why.test(e.message),
      text.slice(0, 80),
    );
  }
});

test('the exit statuses are one table: 75 (busy) among them', () => {
  assert.deepEqual(EXIT, { ok: 0, failed: 1, invalid: 2, bug: 70, busy: 75, interrupted: 130 });
});

test('exp train with a malformed EXP_LAUNCH exits 2 with LAUNCH_SETTINGS_INVALID and writes nothing into the folder', async () => {
  const dir = await plannedFolder('badlaunch', 1);
  const before = readdirSync(dir).sort();
  const r = exp(['train', dir], { cwd: tmp, env: { [LAUNCH_VAR]: '{"launcher":"local"' } });
  assert.equal(r.code, EXIT.invalid, r.stderr);
  assert.match(r.stderr, /^exp train: EXP_LAUNCH is not the settings an exp launcher writes: not JSON/m);
  assert.match(r.stderr, /\[LAUNCH_SETTINGS_INVALID\]/);
  assert.deepEqual(readdirSync(dir).sort(), before, 'no run.json, no log, no lock left');
});

test(
  'a second Ctrl-C stops exp train at once: exit 130, with run.json and the event log saying killed, "aborted by a second SIGINT"',
  { timeout: 400_000 },
  async () => {
    const dir = await plannedFolder('abort', 2);
    // The child waits at its rung (epoch 1) for a verdict that never comes: the first SIGINT is
    // acknowledged there (train.log says so) and the second comes while it still waits.
    const env = { ...process.env, ...launchEnv({ launcher: 'local', uploadCheckpoints: false, holdEpochs: [1], pinTracking: false }), MLFLOW_TRACKING_URI: '' };
    const acks = (): number =>
      existsSync(join(dir, 'train.log')) ? readFileSync(join(dir, 'train.log'), 'utf8').split('stopping: finishing the current batch').length - 1 : 0;
    let reason = '';
    let code: number | null = null;
    // The verdict's wait re-checks every 5 s: a second signal slower than that finds the run
    // already stopped by the first (killed, exit 130 too). Resuming asks about the rung again.
    for (let attempt = 0; attempt < 4 && !reason.startsWith('aborted'); attempt++) {
      let sent = false;
      const child = spawnTrain(dir, {
        env,
        output: 'quiet',
        onMessage: (m) => {
          if (sent || m.type !== 'epoch' || m.epoch !== 1) return;
          sent = true;
          const seen = acks();
          child.interrupt();
          void (async () => {
            for (let i = 0; i < 2400 && acks() === seen; i++) await new Promise((r) => setTimeout(r, 25));
            child.interrupt();
          })();
        },
      });
      code = (await child.exited).code;
      const rec = JSON.parse(readFileSync(join(dir, 'run.json'), 'utf8')) as { status: string; reason: string };
      assert.equal(rec.status, 'killed');
      assert.equal(code, EXIT.interrupted);
      reason = rec.reason;
    }
    assert.equal(reason, 'aborted by a second SIGINT');
    const ended = readEvents(dir)
      .events.filter((e) => e.type === 'run_ended')
      .at(-1);
    assert.deepEqual(ended && ended.type === 'run_ended' ? [ended.status, ended.reason] : [], ['killed', 'aborted by a second SIGINT']);
    assert.equal(runFolderBusy(dir).busy, false, 'the lock was released before the exit');
  },
);
