/**
 * Entry point: picks the command, parses its flags from its table, runs it, and maps
 * failures to exit codes. The only place (with bin/exp.js) that decides how the process ends.
 */
import { readFileSync } from 'node:fs';
import { helpText, parseCommandArgs, type Command } from './command.js';
import { EXIT, UsageError, type Io } from './io.js';
import { validateCommand } from './validate.js';
import { planCommand } from './plan.js';
import { runCommand } from './run.js';
import { schemaCommand } from './schema.js';
import { trainCommand } from './train.js';
import { dataSynthCommand } from './data-synth.js';
import { dataStatsCommand } from './data-stats.js';
import { weightsFetchCommand } from './weights-fetch.js';
import { backendsCommand } from './backends.js';
import { syncCommand } from './sync.js';
import { statusCommand } from './status.js';
import { runsCommand } from './runs.js';
import { compareCommand } from './compare.js';
import { reproduceCommand } from './reproduce.js';
import { uiCommand } from './ui.js';
import { ConfigError } from '../config/problem.js';
import { printProblems } from './report.js';

export const commands: Command[] = [validateCommand, planCommand, runCommand, trainCommand, dataSynthCommand, dataStatsCommand, weightsFetchCommand, backendsCommand, syncCommand, statusCommand, runsCommand, compareCommand, reproduceCommand, uiCommand, schemaCommand];

export function version(): string {
  const pkg = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string };
  return pkg.version;
}

function mainHelp(): string {
  const lines = ['exp - declarative experiments for transfer-learning image classifiers', '', 'Usage: exp <command> [options]', '', 'Commands:'];
  const width = Math.max(...commands.map((c) => c.name.length));
  for (const c of commands) lines.push(`  ${c.name.padEnd(width)}  ${c.summary}`);
  lines.push('', "Run 'exp <command> --help' for a command's options. 'exp --version' prints the version.");
  return lines.join('\n') + '\n';
}

export async function main(argv: string[], io: Io): Promise<number> {
  const [name, ...rest] = argv;
  if (!name || name === '--help' || name === '-h' || name === 'help') {
    io.stdout.write(mainHelp());
    return name ? EXIT.ok : EXIT.usage;
  }
  if (name === '--version' || name === '-V' || name === 'version') { io.stdout.write(`exp ${version()}\n`); return EXIT.ok; }
  // Subcommand groups (e.g. `exp data synth`) are registered as "data synth".
  const cmd = commands.find((c) => c.name === `${name} ${rest[0] ?? ''}`.trim()) ?? commands.find((c) => c.name === name);
  if (!cmd) {
    io.stderr.write(`exp: unknown command '${name}'. Run 'exp --help' for the list.\n`);
    return EXIT.usage;
  }
  const args = cmd.name.includes(' ') ? rest.slice(1) : rest;
  try {
    const { positionals, flags } = parseCommandArgs(cmd, args);
    if (flags.help) { io.stdout.write(helpText(cmd)); return EXIT.ok; }
    return await cmd.run(positionals, flags, io);
  } catch (e) {
    if (e instanceof UsageError) { io.stderr.write(`exp ${cmd.name}: ${e.message}\n`); return EXIT.usage; }
    if (e instanceof ConfigError) { printProblems(io, e.problems, new Map()); return EXIT.invalid; }
    io.stderr.write(`exp ${cmd.name}: internal error: ${(e as Error).stack ?? String(e)}\nThis is a bug in exp; please report it with the command you ran and the output above.\n`);
    return EXIT.bug;
  }
}
