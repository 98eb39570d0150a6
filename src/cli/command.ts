/**
 * One typed table per command drives its flag parsing and its --help text, so the two
 * cannot drift apart.
 */
import { parseArgs } from 'node:util';
import { UsageError, type Io } from './io.js';

export interface Flag {
  type: 'string' | 'boolean';
  short?: string;
  multiple?: boolean;
  /** Shown in --help, e.g. "path=value". */
  arg?: string;
  description: string;
}

export interface Command {
  name: string;
  summary: string;
  usage: string;
  /** Longer help text shown under the usage line. */
  details?: string;
  flags: Record<string, Flag>;
  run(positionals: string[], flags: Record<string, string | boolean | string[] | undefined>, io: Io): Promise<number>;
}

export function helpText(cmd: Command): string {
  const lines = [`Usage: exp ${cmd.usage}`, '', cmd.summary];
  if (cmd.details) lines.push('', cmd.details);
  const flags = Object.entries(cmd.flags);
  lines.push('', 'Options:');
  for (const [name, f] of [...flags, ['help', { type: 'boolean', short: 'h', description: 'Show this help.' }] as [string, Flag]]) {
    const left = `${f.short ? `-${f.short}, ` : '    '}--${name}${f.arg ? ` ${f.arg}` : ''}`;
    lines.push(`  ${left.padEnd(30)} ${f.description}${f.multiple ? ' (repeatable)' : ''}`);
  }
  return lines.join('\n') + '\n';
}

export function parseCommandArgs(cmd: Command, argv: string[]): { positionals: string[]; flags: Record<string, string | boolean | string[] | undefined> } {
  const options: Record<string, { type: 'string' | 'boolean'; short?: string; multiple?: boolean }> = { help: { type: 'boolean', short: 'h' } };
  for (const [name, f] of Object.entries(cmd.flags)) options[name] = { type: f.type, ...(f.short ? { short: f.short } : {}), ...(f.multiple ? { multiple: true } : {}) };
  try {
    const { values, positionals } = parseArgs({ args: argv, options, allowPositionals: true, strict: true });
    return { positionals, flags: values as Record<string, string | boolean | string[] | undefined> };
  } catch (e) {
    throw new UsageError(`${(e as Error).message}\nRun 'exp ${cmd.name} --help' for usage.`);
  }
}
