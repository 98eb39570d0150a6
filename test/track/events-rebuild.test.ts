/**
 * One builder per event type (src/track/event-builders.ts): the log a real training run wrote
 * and the log `exp sync --rebuild-events` makes again from the same folder's other files are
 * the same events, in the same order, field for field. Left out, by nature: each event's
 * `seq` and `time` (a rebuild numbers and stamps its own), and the `system` events (resource
 * samples and per-epoch speed, which only the live process measured and no other file keeps).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import { exp, tempDir } from '../helpers/cli.js';
import { tinyExperiment, trainingBackends } from '../helpers/training.js';
import { readEvents, type LoggedEvent } from '../../src/track/events.js';

const runDirOf = (runs: string, experiment: string): string => {
  const sweep = join(runs, experiment, readdirSync(join(runs, experiment))[0]!);
  return join(
    sweep,
    readdirSync(sweep).find((n) => !n.endsWith('.json') && !n.endsWith('.yaml'))!,
  );
};

/** The log's events without what a rebuild cannot know (see the file's comment). */
const comparable = (events: readonly LoggedEvent[]): Record<string, unknown>[] =>
  events.filter((e) => e.type !== 'system').map(({ seq: _seq, time: _time, ...rest }) => rest);

test(
  'regression: the log rebuilt from a trained run folder equals the log training wrote, event for event (the rebuild lost the dataset, run_started tags, the summary and the order)',
  { timeout: 600_000 },
  async () => {
    const backend = (await trainingBackends())[0]!;
    const dir = tempDir();
    const runs = join(dir, 'runs');
    const env = { EXP_CACHE_DIR: join(dir, 'cache'), MLFLOW_TRACKING_URI: '' };
    const ran = exp(['run', tinyExperiment(dir, { backend, epochs: 2 }), '--runs-dir', runs], { env });
    assert.equal(ran.code, 0, ran.stdout + ran.stderr);
    const run = runDirOf(runs, 'tiny');
    const tagged = exp(['tag', run, 'team=vision'], { env });
    assert.equal(tagged.code, 0, tagged.stdout + tagged.stderr);

    const trained = readEvents(run);
    assert.deepEqual([trained.damaged, trained.torn], [[], false]);
    const types = comparable(trained.events).map((e) => e.type);
    assert.deepEqual(types, ['run_started', 'dataset', 'epoch', 'epoch', 'model', 'result', ...types.filter((t) => t === 'artifact'), 'run_ended', 'tags']);
    assert.ok(types.filter((t) => t === 'artifact').length >= 4, `the end files are artifacts: ${types.join(' ')}`);

    const rebuilt = exp(['sync', '--rebuild-events', run], { env });
    assert.equal(rebuilt.code, 0, rebuilt.stdout + rebuilt.stderr);
    const again = readEvents(run);
    assert.deepEqual([again.damaged, again.torn], [[], false]);
    assert.match(rebuilt.stdout, new RegExp(`rebuilt events\\.jsonl \\(${again.events.length} events\\)`));
    assert.deepEqual(comparable(again.events), comparable(trained.events));
    // The tags a rebuilt run_started carries are the trainer's (backend, device, split, data).
    const started = again.events[0]!;
    assert.equal(started.type, 'run_started');
    if (started.type === 'run_started')
      assert.deepEqual(Object.keys(started.tags).sort(), ['exp.backend', 'exp.data_fingerprint', 'exp.device', 'exp.split_hash', 'exp.swept', 'exp.uid']);
  },
);
