import { resolve } from 'node:path';
import { defineCommand } from './command.js';
import { EXIT, cwdOf } from './io.js';
import { JSON_FLAG, RUNS_DIR_FLAG, SET_FLAG, runsDirOf } from './flags.js';
import { startupPoints, studyPlanNote } from './plan-study.js';
import { planExperiment } from '../sweep/plan.js';
import { userConfigOf, userConfigLine } from './user-config.js';
import { formatValue, printProblems, table } from './report.js';

export const planCommand = defineCommand({
  name: 'plan',
  summary: 'Dry run: list every sweep point (key, name, the values that vary) without training anything.',
  usage: 'plan FILE [--set path=value ...] [--runs-dir DIR] [--json]',
  details: '--json prints a JSON array of {key, name, params, config}, where config is the fully resolved run config.',
  positionals: { name: 'FILE', min: 1, max: 1 },
  flags: { set: SET_FLAG, json: JSON_FLAG, 'runs-dir': RUNS_DIR_FLAG },
  async run(files, flags, io) {
    const result = planExperiment(resolve(cwdOf(io), files[0]!), { set: flags.set, user: userConfigOf(io) });
    if (!result.plan) {
      printProblems(io, result.problems, result.texts);
      return EXIT.invalid;
    }
    const { excluded, duplicates, experiment } = result.plan;
    // An adaptive study's known points are its start-up draws; the rest is proposed as results arrive.
    const points = experiment.sweep?.tpe ? startupPoints(result.plan) : result.plan.points;
    if (flags.json) {
      io.stdout.write(
        JSON.stringify(
          points.map(({ key, name, params, config }) => ({ key, name, params, config })),
          null,
          2,
        ) + '\n',
      );
      return EXIT.ok;
    }
    const paths = [...new Set(points.flatMap((p) => Object.keys(p.params)))];
    const rows = points.map((p) => [String(p.index + 1), p.key, p.name, ...paths.map((k) => (k in p.params ? formatValue(p.params[k]) : ''))]);
    io.stdout.write(`Experiment ${experiment.name}${experiment.description ? ` - ${experiment.description}` : ''}\n${userConfigLine(result.plan, io)}\n`);
    io.stdout.write(table(['#', 'key', 'name', ...paths], rows));
    const notes = [excluded ? `${excluded} excluded` : '', duplicates ? `${duplicates} duplicate${duplicates === 1 ? '' : 's'} removed` : '']
      .filter(Boolean)
      .join(', ');
    if (experiment.sweep?.tpe) io.stdout.write(studyPlanNote(result.plan, runsDirOf(flags['runs-dir'], io)));
    else io.stdout.write(`\n${points.length} run${points.length === 1 ? '' : 's'}${notes ? ` (${notes})` : ''}\n`);
    return EXIT.ok;
  },
});
