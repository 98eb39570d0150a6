import type { Command } from './command.js';
import { EXIT } from './io.js';
import { planExperiment } from '../sweep/plan.js';
import { printProblems, displayPath } from './report.js';

export const validateCommand: Command = {
  name: 'validate',
  summary: 'Check experiment files against the schema and report every problem with file:line:col.',
  usage: 'validate FILE... [--set path=value ...]',
  details: 'Exit status: 0 when every file is valid, 2 when any is not. Problems go to stderr.',
  flags: {
    set: { type: 'string', multiple: true, arg: 'path=value', description: 'Override a setting before validating (YAML value; a list sweeps it).' },
  },
  async run(files, flags, io) {
    if (files.length === 0) { io.stderr.write('exp validate: give at least one FILE\n'); return EXIT.usage; }
    let ok = true;
    for (const file of files) {
      const result = planExperiment(file, { set: (flags.set as string[] | undefined) ?? [] });
      if (result.problems.length > 0) {
        ok = false;
        printProblems(io, result.problems, result.texts);
      } else {
        const n = result.plan!.points.length;
        io.stdout.write(`${displayPath(file, io.cwd)}: valid (${n} run${n === 1 ? '' : 's'})\n`);
      }
    }
    return ok ? EXIT.ok : EXIT.invalid;
  },
};
