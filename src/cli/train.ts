import type { Command } from './command.js';
import { EXIT } from './io.js';
import { existsSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { trainRunFolder } from '../train/run.js';
import { LockedError } from '../exec/lock.js';
import { DataError } from '../data/planet.js';
import { WeightsError } from '../model/errors.js';
import { BackendUnavailableError } from '../backend/select.js';

export const trainCommand: Command = {
  name: 'train',
  summary: 'Train one run folder (written by `exp run`); resumes from its last checkpoint.',
  usage: 'train RUN_DIR [--force]',
  details: 'This is what `exp run` starts for each sweep point, in a child process. Exit status: 0 completed, 1 failed, 130 interrupted.',
  flags: { force: { type: 'boolean', description: 'Train again even if the folder says completed.' } },
  async run(dirs, flags, io) {
    if (dirs.length !== 1) { io.stderr.write('exp train: give exactly one RUN_DIR\n'); return EXIT.usage; }
    const dir = resolve(io.cwd ?? process.cwd(), dirs[0]!);
    if (!existsSync(join(dir, 'config.yaml'))) { io.stderr.write(`exp train: ${dir} has no config.yaml; create run folders with 'exp run FILE --dry-run'\n`); return EXIT.usage; }
    let interrupted = false;
    const onSignal = (): void => { interrupted = true; };
    process.on('SIGINT', onSignal);
    process.on('SIGTERM', onSignal);
    try {
      const rec = await trainRunFolder(dir, { out: io.stdout, interrupted: () => interrupted, force: Boolean(flags.force) });
      return rec.status === 'completed' ? EXIT.ok : rec.status === 'killed' ? EXIT.interrupted : EXIT.failed;
    } catch (e) {
      if (e instanceof LockedError || e instanceof DataError || e instanceof WeightsError || e instanceof BackendUnavailableError) {
        io.stderr.write(`exp train: ${(e as Error).message}\n`);
        return EXIT.failed;
      }
      throw e;
    } finally {
      process.off('SIGINT', onSignal);
      process.off('SIGTERM', onSignal);
    }
  },
};
