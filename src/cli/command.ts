/**
 * One typed table per command drives its flag parsing, its typed flag values and its --help
 * text (defaults and ranges included), so the three cannot drift apart. Commands receive
 * flags already converted and checked: an int flag out of range is a usage error before the
 * command runs.
 */
import { parseArgs } from 'node:util';
import { UsageError } from '../errors.js';
import { closest } from '../config/problem.js';
import type { Io } from './io.js';

interface FlagBase {
  description: string;
  short?: string;
}

/** One option of a command. `list` repeats (`--set a=1 --set b=2`). */
export type FlagSpec =
  | (FlagBase & { type: 'boolean' })
  | (FlagBase & { type: 'string'; arg: string; default?: string; choices?: readonly string[] })
  | (FlagBase & { type: 'list'; arg: string })
  | (FlagBase & { type: 'int' | 'number'; arg: string; default?: number; min?: number; max?: number });

type ValueOf<F> = F extends { type: 'boolean' }
  ? boolean
  : F extends { type: 'list' }
    ? string[]
    : F extends { type: 'int' | 'number'; default: number }
      ? number
      : F extends { type: 'int' | 'number' }
        ? number | undefined
        : F extends { type: 'string'; default: string }
          ? string
          : F extends { type: 'string'; choices: readonly (infer C)[] }
            ? C | undefined
            : string | undefined;

/** The flag values a command's `run` receives, typed from its table. */
export type FlagValues<T> = { -readonly [K in keyof T]: ValueOf<T[K]> };

export interface Positionals {
  /** Shown in messages, e.g. 'FILE' or 'RUN'. */
  name: string;
  min?: number;
  /** Default: no limit. */
  max?: number;
}

export interface Command {
  name: string;
  summary: string;
  usage: string;
  /** Longer help text shown under the usage line. */
  details?: string;
  flags: Readonly<Record<string, FlagSpec>>;
  positionals: Positionals;
  run(positionals: string[], flags: Record<string, unknown>, io: Io): Promise<number>;
}

export interface CommandDef<T extends Record<string, FlagSpec>> extends Omit<Command, 'run' | 'flags'> {
  flags: T;
  run(positionals: string[], flags: FlagValues<T>, io: Io): Promise<number>;
}

/** A command whose `run` gets flags typed from its own table. */
export function defineCommand<const T extends Record<string, FlagSpec>>(def: CommandDef<T>): Command {
  return { ...def, run: (p, f, io) => def.run(p, f as FlagValues<T>, io) };
}

const HELP: FlagSpec = { type: 'boolean', short: 'h', description: 'Show this help.' };

function describeFlag(f: FlagSpec): string {
  const notes: string[] = [];
  if (f.type === 'list') notes.push('repeatable');
  if ((f.type === 'int' || f.type === 'number') && (f.min !== undefined || f.max !== undefined)) notes.push(`${f.min ?? '-inf'}..${f.max ?? 'inf'}`);
  if (f.type === 'string' && f.choices) notes.push(`one of ${f.choices.join(', ')}`);
  if ((f.type === 'string' || f.type === 'int' || f.type === 'number') && f.default !== undefined) notes.push(`default ${f.default}`);
  return `${f.description}${notes.length ? ` (${notes.join('; ')})` : ''}`;
}

export function helpText(cmd: Command): string {
  const lines = [`Usage: exp ${cmd.usage}`, '', cmd.summary];
  if (cmd.details) lines.push('', cmd.details);
  lines.push('', 'Options:');
  for (const [name, f] of [...Object.entries(cmd.flags), ['help', HELP] as const]) {
    const left = `${f.short ? `-${f.short}, ` : '    '}--${name}${'arg' in f ? ` ${f.arg}` : ''}`;
    lines.push(`  ${left.padEnd(30)} ${describeFlag(f)}`);
  }
  return lines.join('\n') + '\n';
}

function convert(cmd: Command, name: string, f: FlagSpec, raw: unknown): unknown {
  const bad = (what: string): never => {
    throw new UsageError({ code: 'BAD_OPTION_VALUE', message: `--${name} ${what}, got '${String(raw)}'`, fix: `run 'exp ${cmd.name} --help' for the options` });
  };
  switch (f.type) {
    case 'boolean':
      return raw === true;
    case 'list':
      return (raw as string[] | undefined) ?? [];
    case 'string': {
      if (raw === undefined) return f.default;
      const s = raw as string;
      if (f.choices && !f.choices.includes(s)) {
        const guess = closest(s, f.choices);
        bad(`must be one of ${f.choices.join(', ')}${guess ? ` (did you mean '${guess}'?)` : ''}`);
      }
      return s;
    }
    case 'int':
    case 'number': {
      if (raw === undefined) return f.default;
      const s = String(raw).trim();
      const v = s === '' ? NaN : Number(s);
      if (!Number.isFinite(v) || (f.type === 'int' && !Number.isInteger(v))) bad(`must be ${f.type === 'int' ? 'an integer' : 'a number'}`);
      if ((f.min !== undefined && v < f.min) || (f.max !== undefined && v > f.max)) bad(`must be from ${f.min ?? '-inf'} to ${f.max ?? 'inf'}`);
      return v;
    }
  }
}

/**
 * An option the command's table does not have. It keeps the option and the value given with
 * it, so that the CLI can point at the config setting of that name (`--epochs 2` -> `--set
 * training.epochs=2`) without this module loading the schema on every start.
 */
export class UnknownOptionError extends UsageError {
  readonly command: Command;
  readonly option: string;
  readonly value: string | undefined;
  readonly guess: string | undefined;

  /** `fix` defaults to pointing at --help; `extra` is appended to the message. */
  constructor(init: { command: Command; option: string; value: string | undefined; guess: string | undefined; fix?: string; extra?: string }) {
    const { command, option, guess } = init;
    super({
      code: 'UNKNOWN_OPTION',
      message: `unknown option '--${option}'${guess ? `; did you mean '--${guess}'?` : ''}${init.extra ?? ''}`,
      fix: init.fix ?? `run 'exp ${command.name} --help' for the options`,
    });
    this.command = command;
    this.option = option;
    this.value = init.value;
    this.guess = guess;
  }
}

/** Parses `argv` against the command's table; unknown options get a "did you mean". */
export function parseCommandArgs(cmd: Command, argv: readonly string[]): { positionals: string[]; flags: Record<string, unknown>; help: boolean } {
  const specs: Record<string, FlagSpec> = { ...cmd.flags, help: HELP };
  const options: Record<string, { type: 'string' | 'boolean'; short?: string; multiple?: boolean }> = {};
  for (const [name, f] of Object.entries(specs)) {
    options[name] = {
      type: f.type === 'boolean' ? 'boolean' : 'string',
      ...(f.short ? { short: f.short } : {}),
      ...(f.type === 'list' ? { multiple: true } : {}),
    };
  }
  for (let i = 0; i < argv.length && argv[i] !== '--'; i++) {
    if (!argv[i]!.startsWith('--')) continue;
    const [name = '', ...eq] = argv[i]!.slice(2).split('=');
    if (name in specs) continue;
    const next = argv[i + 1];
    const value = eq.length ? eq.join('=') : next !== undefined && !next.startsWith('-') ? next : undefined;
    throw new UnknownOptionError({ command: cmd, option: name, value, guess: closest(name, Object.keys(specs)) });
  }
  let parsed: { values: Record<string, unknown>; positionals: string[] };
  try {
    parsed = parseArgs({ args: [...argv], options, allowPositionals: true, strict: true }) as typeof parsed;
  } catch (e) {
    throw new UsageError({ code: 'USAGE', message: (e as Error).message, fix: `run 'exp ${cmd.name} --help' for usage` });
  }
  const help = parsed.values.help === true;
  const flags: Record<string, unknown> = {};
  if (!help) for (const [name, f] of Object.entries(cmd.flags)) flags[name] = convert(cmd, name, f, parsed.values[name]);
  const { name, min = 0, max = Infinity } = cmd.positionals;
  const n = parsed.positionals.length;
  if (!help && (n < min || n > max)) {
    const want = min === max ? `exactly ${min}` : max === Infinity ? `at least ${min}` : min === 0 ? `at most ${max}` : `${min} to ${max}`;
    const extra = n > max ? `; unexpected '${parsed.positionals[max]}'` : '';
    throw new UsageError({ code: 'USAGE', message: `give ${want} ${name} (got ${n})${extra}`, fix: `usage: exp ${cmd.usage}` });
  }
  return { positionals: parsed.positionals, flags, help };
}
