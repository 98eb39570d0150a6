import type { Command } from './command.js';
import { EXIT } from './io.js';
import { planExperiment } from '../sweep/plan.js';
import { printProblems, displayPath } from './report.js';
import { DEFAULT_RUNS_DIR, writePlan } from '../track/store.js';

export const runCommand: Command = {
  name: 'run',
  summary: 'Plan the experiment, write one folder per sweep point, and train each point that is not finished.',
  usage: 'run FILE [--set path=value ...] [--runs-dir DIR] [--sweep NAME]',
  details: 'Re-running the same file resumes its sweep: finished points are skipped, interrupted ones continue from their last checkpoint.',
  flags: {
    set: { type: 'string', multiple: true, arg: 'path=value', description: 'Override a setting (YAML value; a list sweeps it).' },
    'runs-dir': { type: 'string', arg: 'DIR', description: `Run store folder (default ${DEFAULT_RUNS_DIR}, or $EXP_RUNS_DIR).` },
    sweep: { type: 'string', arg: 'NAME', description: 'Name of the sweep folder (default: a hash of the resolved experiment).' },
    'dry-run': { type: 'boolean', description: 'Write the run folders (config.yaml each) but train nothing.' },
  },
  async run(files, flags, io) {
    if (files.length !== 1) { io.stderr.write('exp run: give exactly one FILE\n'); return EXIT.usage; }
    const result = planExperiment(files[0]!, { set: (flags.set as string[] | undefined) ?? [] });
    if (!result.plan) { printProblems(io, result.problems, result.texts); return EXIT.invalid; }
    const runsDir = (flags['runs-dir'] as string | undefined) ?? io.env.EXP_RUNS_DIR ?? DEFAULT_RUNS_DIR;
    const { dir, index } = writePlan(runsDir, result.plan, flags.sweep as string | undefined);
    io.stdout.write(`Planned ${index.points.length} run${index.points.length === 1 ? '' : 's'} in ${displayPath(dir, io.cwd)}\n`);
    for (const p of index.points) io.stdout.write(`  ${p.dir}\n`);
    return EXIT.ok;
  },
};
