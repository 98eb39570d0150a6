import { existsSync, readdirSync, statSync } from 'node:fs';
import { resolve } from 'node:path';
import { defineCommand } from './command.js';
import { EXIT, cwdOf } from './io.js';
import { BACKEND_FLAG, type BackendChoice, RUNS_DIR_FLAG, TTA_FLAG, runsDirOf } from './flags.js';
import { displayPath, table } from './report.js';
import { isEnsembleFolder } from '../store/ensemble.js';
import { ensembleManifestPath } from '../store/layout.js';
import { UsageError } from '../errors.js';
import { findRunFolder, findSweepDir } from '../store/find.js';
import { isRunFolder } from '../store/run.js';
import { sweepTable } from '../query/runs.js';
import { rankedBy } from '../config/metric.js';

const f4 = (v: number): string => v.toFixed(4);

export const ensembleCommand = defineCommand({
  name: 'ensemble',
  summary: 'Average the probabilities of several trained runs, tune thresholds on the average, and save it as one model.',
  usage: 'ensemble RUN RUN... --out DIR | ensemble SWEEP --top K --out DIR [--sort METRIC] [--tta]',
  details: [
    'The members are scored alone and averaged on their shared validation split (runs with different splits, tags, image',
    'sizes or preprocessing are refused); thresholds are tuned per tag on the average, with a held-out estimate. DIR gets',
    'ensemble.json (members relative to DIR, thresholds, scores), which exp evaluate, predict and export accept as RUN.',
    "With a sweep folder, the --top K completed points by the sweep's ranking (as exp compare shows it, or --sort) are used.",
  ].join('\n'),
  positionals: { name: 'RUN', min: 1 },
  flags: {
    out: { type: 'string', arg: 'DIR', description: 'The ensemble folder to write (required).' },
    top: { type: 'int', arg: 'K', min: 2, description: 'With a sweep folder: how many of its best points to average (default 3).' },
    sort: {
      type: 'string',
      arg: 'METRIC',
      description: "With a sweep folder: rank points by this metric (default: the sweep's, sweep.metric, as exp compare does).",
    },
    tta: TTA_FLAG,
    backend: BACKEND_FLAG,
    'runs-dir': RUNS_DIR_FLAG,
  },
  async run(args, flags, io) {
    const cwd = cwdOf(io);
    if (!flags.out) throw new UsageError({ code: 'USAGE', message: 'exp ensemble needs --out DIR', fix: 'e.g. exp ensemble RUN1 RUN2 --out ensembles/best3' });
    const out = resolve(cwd, flags.out);
    if (existsSync(out) && (!statSync(out).isDirectory() || (readdirSync(out).length > 0 && !isEnsembleFolder(out)))) {
      throw new UsageError({
        code: 'BAD_OPTION_VALUE',
        message: `${flags.out} exists and is not an ensemble folder; exp will not write into it`,
        fix: 'give a new or empty folder',
      });
    }
    const runsDir = runsDirOf(flags['runs-dir'], io);
    let dirs: string[];
    const one = resolve(cwd, args[0]!);
    if (args.length === 1 && !(existsSync(one) && isRunFolder(one))) {
      const t = sweepTable(findSweepDir(args[0]!, cwd, runsDir), flags.sort);
      dirs = t.rows
        .filter((r) => r.status === 'completed' && r.best)
        .slice(0, flags.top ?? 3)
        .map((r) => r.dir);
      io.stderr.write(`top ${dirs.length} of ${t.rows.length} points of ${displayPath(t.dir, cwd)}, ${rankedBy(t)}\n`);
    } else {
      if (flags.top !== undefined)
        throw new UsageError({
          code: 'USAGE',
          message: '--top needs a sweep folder, not run folders',
          fix: 'give one sweep folder with --top K, or the runs themselves',
        });
      dirs = args.map((a) => findRunFolder(a, cwd, runsDir));
    }
    const { makeEnsemble } = await import('../infer/ensemble.js');
    const file = await makeEnsemble(dirs, out, { tta: flags.tta, backend: flags.backend as BackendChoice, onProgress: (m) => io.stderr.write(`${m}\n`) });
    const s = file.scores;
    const b = file.beta;
    io.stdout.write(
      table(
        ['model', `val F${b} (run threshold)`, `val F${b} (tuned)`],
        [
          ...s.members.map((m) => [displayPath(resolve(out, m.dir), cwd), f4(m.val_fbeta), f4(m.val_fbeta_tuned)]),
          ['(ensemble)', f4(s.val_fbeta), f4(s.val_fbeta_tuned)],
        ],
      ),
    );
    io.stdout.write(
      `\nwrote ${displayPath(ensembleManifestPath(out), cwd)}: ${dirs.length} runs on ${s.images} validation images${file.tta ? ' with TTA' : ''}; thresholds tuned on one half and scored on the other: ${f4(s.held_out.tuned)} (vs ${f4(s.held_out.at_threshold)} at the run's threshold)\n`,
    );
    return EXIT.ok;
  },
});
