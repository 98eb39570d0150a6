import { resolve } from 'node:path';
import { defineCommand } from './command.js';
import { EXIT, type ExitCode } from './io.js';
import { ExpError, LockedError } from '../errors.js';
import { ConfigError } from '../config/problem.js';
import { isRunFolder } from '../store/run.js';
import { isFinished } from '../store/types.js';
import { readLaunchSettings } from '../exec/protocol.js';
import { UsageError } from '../errors.js';
import { reportError } from './report.js';

export const trainCommand = defineCommand({
  name: 'train',
  summary: 'Train one run folder (written by `exp run`); resumes from its last checkpoint.',
  usage: 'train RUN_DIR [--force]',
  details: [
    'This is what `exp run` and `exp worker` start for each sweep point, in a child process.',
    'Ctrl-C (or SIGTERM) stops it at the next batch with its position saved; a second one stops it at once.',
    `Exit status: 0 completed (or pruned), 1 failed, 2 invalid config.yaml, ${EXIT.busy} another process is training the folder, 130 stopped.`,
  ].join('\n'),
  positionals: { name: 'RUN_DIR', min: 1, max: 1 },
  flags: { force: { type: 'boolean', description: 'Train from scratch even if the folder has trained before (drops its checkpoints and results).' } },
  async run(dirs, flags, io) {
    const dir = resolve(io.cwd ?? process.cwd(), dirs[0]!);
    if (!isRunFolder(dir))
      throw new UsageError({
        code: 'PATH_NOT_FOUND',
        message: `${dir} is not a run folder (it has no config.yaml)`,
        fix: "run folders are written by 'exp run FILE' (add --dry-run to only write them)",
      });
    // The launcher's settings, checked once, before anything is written (a bad value exits 2).
    const launch = readLaunchSettings(io.env);
    // Loaded here, not at the top: only this command needs TensorFlow.js.
    const { trainRunFolder } = await import('../train/run.js');
    const exitNow = io.exit ? { exitNow: () => io.exit!(EXIT.interrupted) } : {};
    try {
      const rec = await trainRunFolder(dir, { out: io.stdout, force: flags.force, env: io.env, ...(launch ? { launch } : {}), ...exitNow });
      return isFinished(rec.status) ? EXIT.ok : rec.status === 'killed' ? EXIT.interrupted : EXIT.failed;
    } catch (e) {
      return reportError(e, 'train', io, trainExitOf(e));
    }
  },
});

/**
 * exp train's own statuses for an error of the run: busy when another process trains the folder;
 * any other coded error is the run's failure (recorded in run.json and its events), 1 whatever
 * the error's own kind; config.yaml's problems stay invalid input, and a bug stays a bug.
 */
function trainExitOf(e: unknown): ExitCode | undefined {
  if (e instanceof LockedError) return EXIT.busy;
  if (e instanceof ConfigError || !(e instanceof ExpError)) return undefined;
  return EXIT.failed;
}
