/**
 * Entry point: picks the command, parses its flags from its table, runs it, and maps
 * failures to exit codes. The only place (with bin/exp.js) that decides how the process ends.
 */
import { readFileSync } from 'node:fs';
import { helpText, parseCommandArgs, UnknownOptionError, type Command } from './command.js';
import { EXIT, type Io } from './io.js';
import { closest } from '../config/problem.js';
import { reportError } from './report.js';

/**
 * Every command, in help order, loaded on demand: a command's module (and what it pulls in,
 * such as TensorFlow.js) is imported only when that command runs, so `exp validate`, `exp run`
 * and `exp runs` start in a fraction of the time `exp train` needs.
 */
export const COMMANDS: readonly { name: string; load: () => Promise<Command> }[] = [
  { name: 'validate', load: async () => (await import('./validate.js')).validateCommand },
  { name: 'plan', load: async () => (await import('./plan.js')).planCommand },
  { name: 'run', load: async () => (await import('./run.js')).runCommand },
  { name: 'worker', load: async () => (await import('./worker.js')).workerCommand },
  { name: 'cancel', load: async () => (await import('./slurm.js')).cancelCommand },
  { name: 'slurm-task', load: async () => (await import('./slurm.js')).slurmTaskCommand },
  { name: 'queue status', load: async () => (await import('./queue.js')).queueStatusCommand },
  { name: 'queue retry-failed', load: async () => (await import('./queue.js')).queueRetryCommand },
  { name: 'train', load: async () => (await import('./train.js')).trainCommand },
  { name: 'data synth', load: async () => (await import('./data-synth.js')).dataSynthCommand },
  { name: 'data stats', load: async () => (await import('./data-stats.js')).dataStatsCommand },
  { name: 'weights fetch', load: async () => (await import('./weights-fetch.js')).weightsFetchCommand },
  { name: 'backends', load: async () => (await import('./backends.js')).backendsCommand },
  { name: 'sync', load: async () => (await import('./sync.js')).syncCommand },
  { name: 'status', load: async () => (await import('./status.js')).statusCommand },
  { name: 'runs', load: async () => (await import('./runs.js')).runsCommand },
  { name: 'compare', load: async () => (await import('./compare.js')).compareCommand },
  { name: 'report', load: async () => (await import('./sweep-report.js')).reportCommand },
  { name: 'evaluate', load: async () => (await import('./evaluate.js')).evaluateCommand },
  { name: 'predict', load: async () => (await import('./predict.js')).predictCommand },
  { name: 'export', load: async () => (await import('./export.js')).exportCommand },
  { name: 'ensemble', load: async () => (await import('./ensemble.js')).ensembleCommand },
  { name: 'tag', load: async () => (await import('./housekeeping.js')).tagCommand },
  { name: 'rm', load: async () => (await import('./housekeeping.js')).rmCommand },
  { name: 'gc', load: async () => (await import('./housekeeping.js')).gcCommand },
  { name: 'cache ls', load: async () => (await import('./cache.js')).cacheLsCommand },
  { name: 'cache rm', load: async () => (await import('./cache.js')).cacheRmCommand },
  { name: 'cache gc', load: async () => (await import('./cache.js')).cacheGcCommand },
  { name: 'reproduce', load: async () => (await import('./reproduce.js')).reproduceCommand },
  { name: 'sweep simulate', load: async () => (await import('./sweep-simulate.js')).sweepSimulateCommand },
  { name: 'why', load: async () => (await import('./why.js')).whyCommand },
  { name: 'ui', load: async () => (await import('./ui.js')).uiCommand },
  { name: 'schema', load: async () => (await import('./schema.js')).schemaCommand },
];

export function version(): string {
  const pkg = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string };
  return pkg.version;
}

async function mainHelp(): Promise<string> {
  const commands = await Promise.all(COMMANDS.map((c) => c.load()));
  const lines = ['exp - declarative experiments for transfer-learning image classifiers', '', 'Usage: exp <command> [options]', '', 'Commands:'];
  const width = Math.max(...commands.map((c) => c.name.length));
  for (const c of commands) lines.push(`  ${c.name.padEnd(width)}  ${c.summary}`);
  lines.push('', "Run 'exp <command> --help' for a command's options. 'exp --version' prints the version.");
  return lines.join('\n') + '\n';
}

export async function main(argv: string[], io: Io): Promise<number> {
  const [name, ...rest] = argv;
  if (!name || name === '--help' || name === '-h' || name === 'help') {
    io.stdout.write(await mainHelp());
    return name ? EXIT.ok : EXIT.invalid;
  }
  if (name === '--version' || name === '-V' || name === 'version') {
    io.stdout.write(`exp ${version()}\n`);
    return EXIT.ok;
  }
  // Subcommand groups (e.g. `exp data synth`) are registered as "data synth".
  const entry = COMMANDS.find((c) => c.name === `${name} ${rest[0] ?? ''}`.trim()) ?? COMMANDS.find((c) => c.name === name);
  if (!entry) {
    const group = COMMANDS.filter((c) => c.name.startsWith(`${name} `)).map((c) => `exp ${c.name}`);
    if (group.length) {
      io.stderr.write(`exp ${name}: use one of ${group.join(', ')} [USAGE]\n`);
      return EXIT.invalid;
    }
    const guess = closest(name, [...new Set(COMMANDS.map((c) => c.name.split(' ')[0]!))]);
    io.stderr.write(`exp: unknown command '${name}'${guess ? `; did you mean '${guess}'?` : ''} Run 'exp --help' for the list. [UNKNOWN_COMMAND]\n`);
    return EXIT.invalid;
  }
  const cmd = await entry.load();
  const args = cmd.name.includes(' ') ? rest.slice(1) : rest;
  try {
    const { positionals, flags, help } = parseCommandArgs(cmd, args);
    if (help) {
      io.stdout.write(helpText(cmd));
      return EXIT.ok;
    }
    return await cmd.run(positionals, flags, io);
  } catch (e) {
    const hinted = e instanceof UnknownOptionError ? (await import('./setting-hint.js')).withSettingHint(e) : e;
    return reportError(hinted, cmd.name, io);
  }
}
