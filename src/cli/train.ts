import { resolve } from 'node:path';
import { defineCommand } from './command.js';
import { EXIT } from './io.js';
import { ExpError, LockedError } from '../errors.js';
import { ConfigError } from '../config/problem.js';
import { EXIT_BUSY } from '../store/status.js';
import { isRunFolder } from '../store/run.js';
import { UsageError } from '../errors.js';
import { reportError } from './report.js';

export const trainCommand = defineCommand({
  name: 'train',
  summary: 'Train one run folder (written by `exp run`); resumes from its last checkpoint.',
  usage: 'train RUN_DIR [--force]',
  details: [
    'This is what `exp run` and `exp worker` start for each sweep point, in a child process.',
    'Ctrl-C (or SIGTERM) stops it at the next batch with its position saved; a second one stops it at once.',
    `Exit status: 0 completed (or pruned), 1 failed, 2 invalid config.yaml, ${EXIT_BUSY} another process is training the folder, 130 stopped.`,
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
    // Loaded here, not at the top: only this command needs TensorFlow.js.
    const { trainRunFolder } = await import('../train/run.js');
    try {
      const rec = await trainRunFolder(dir, { out: io.stdout, force: flags.force, env: io.env });
      return rec.status === 'completed' || rec.status === 'pruned' ? EXIT.ok : rec.status === 'killed' ? EXIT.interrupted : EXIT.failed;
    } catch (e) {
      if (e instanceof LockedError) {
        io.stderr.write(`exp train: ${e.render()}\n`);
        return EXIT_BUSY;
      }
      if (e instanceof ConfigError) return reportError(e, 'train', io);
      // The run recorded its failure (run.json, events); the user gets the reason and the fix.
      if (e instanceof ExpError) {
        io.stderr.write(`exp train: ${e.render()}\n`);
        return EXIT.failed;
      }
      throw e;
    }
  },
});
