import type { Command } from './command.js';
import { EXIT } from './io.js';
import { planExperiment } from '../sweep/plan.js';
import { basename } from 'node:path';
import { printProblems, displayPath, table } from './report.js';
import { runFolders, runDirsOf } from '../exec/local.js';
import { DEFAULT_RUNS_DIR, writePlan } from '../track/store.js';
import { syncAfterRun } from './sync.js';

export const runCommand: Command = {
  name: 'run',
  summary: 'Plan the experiment, write one folder per sweep point, and train each point that is not finished.',
  usage: 'run FILE [--set path=value ...] [--runs-dir DIR] [--sweep NAME] [--dry-run] [--only-failed] [--force]',
  details: 'Re-running the same file resumes its sweep: finished points are skipped, interrupted ones continue from their last checkpoint.',
  flags: {
    set: { type: 'string', multiple: true, arg: 'path=value', description: 'Override a setting (YAML value; a list sweeps it).' },
    'runs-dir': { type: 'string', arg: 'DIR', description: `Run store folder (default ${DEFAULT_RUNS_DIR}, or $EXP_RUNS_DIR).` },
    sweep: { type: 'string', arg: 'NAME', description: 'Name of the sweep folder (default: a hash of the resolved experiment).' },
    'dry-run': { type: 'boolean', description: 'Write the run folders (config.yaml each) but train nothing.' },
    force: { type: 'boolean', description: 'Re-train points that already completed.' },
    'only-failed': { type: 'boolean', description: 'Re-run only points whose last attempt failed or was killed.' },
  },
  async run(files, flags, io) {
    if (files.length !== 1) { io.stderr.write('exp run: give exactly one FILE\n'); return EXIT.usage; }
    const result = planExperiment(files[0]!, { set: (flags.set as string[] | undefined) ?? [] });
    if (!result.plan) { printProblems(io, result.problems, result.texts); return EXIT.invalid; }
    const runsDir = (flags['runs-dir'] as string | undefined) || io.env.EXP_RUNS_DIR || DEFAULT_RUNS_DIR;
    const { dir, index } = writePlan(runsDir, result.plan, flags.sweep as string | undefined);
    io.stdout.write(`Planned ${index.points.length} run${index.points.length === 1 ? '' : 's'} in ${displayPath(dir, io.cwd)}\n`);
    for (const p of index.points) io.stdout.write(`  ${p.dir}\n`);
    if (flags['dry-run']) return EXIT.ok;
    const results = await runFolders(runDirsOf(dir, index.points), {
      force: Boolean(flags.force), onlyFailed: Boolean(flags['only-failed']),
      onStart: (d, i, n) => io.stdout.write(`\n[${i + 1}/${n}] ${displayPath(d, io.cwd)}\n`),
    });
    await syncAfterRun(results.map((r) => r.dir), dir, io); // a sweep shows in MLflow when the run ends
    io.stdout.write(`\n${table(['run', 'status', 'seconds'], results.map((r) => [basename(r.dir), r.status, r.seconds ? r.seconds.toFixed(1) : '']))}`);
    const bad = results.filter((r) => r.status === 'failed' || r.status === 'killed');
    if (results.some((r) => r.status === 'killed')) return EXIT.interrupted;
    return bad.length > 0 ? EXIT.failed : EXIT.ok;
  },
};
