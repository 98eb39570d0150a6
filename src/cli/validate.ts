import { resolve } from 'node:path';
import { defineCommand } from './command.js';
import { EXIT, cwdOf } from './io.js';
import { planExperiment } from '../sweep/plan.js';
import { userConfigOf } from './user-config.js';
import { printProblems, displayPath } from './report.js';
import { SET_FLAG } from './flags.js';
import { preflight } from '../exec/preflight.js';

export const validateCommand = defineCommand({
  name: 'validate',
  summary: 'Check experiment files against the schema and report every problem with file:line:col.',
  usage: 'validate FILE... [--set path=value ...] [--preflight]',
  details: [
    'Exit status: 0 when every file is valid, 2 when any is not. Problems go to stderr.',
    '--preflight also checks what running it needs, as `exp run` does before writing anything: the data folder,',
    'its label CSV and image folder, the weights file (and its MD5), and the backend asked for.',
  ].join('\n'),
  positionals: { name: 'FILE', min: 1 },
  flags: {
    set: SET_FLAG,
    preflight: { type: 'boolean', description: 'Also check the data, weights and backend each point needs.' },
  },
  async run(files, flags, io) {
    let ok = true;
    const user = userConfigOf(io);
    for (const file of files) {
      const result = planExperiment(resolve(cwdOf(io), file), { set: flags.set, user });
      if (!result.plan) {
        ok = false;
        printProblems(io, result.problems, result.texts);
        continue;
      }
      const problems = flags.preflight ? await preflight(result.plan, result.sources, io.env) : [];
      if (problems.length > 0) {
        ok = false;
        printProblems(io, problems, result.texts);
        continue;
      }
      const n = result.plan.points.length;
      io.stdout.write(`${displayPath(file, io.cwd)}: valid (${n} run${n === 1 ? '' : 's'})${flags.preflight ? '; data, weights and backend ready' : ''}\n`);
    }
    return ok ? EXIT.ok : EXIT.invalid;
  },
});
