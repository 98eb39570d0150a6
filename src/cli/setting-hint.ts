/**
 * `exp run FILE --epochs 2`: the command has no --epochs, but the config has training.epochs.
 * An unknown option that names a config setting (by its last path segment, or its whole dotted
 * path; case, '-' and '_' ignored) gets the --set that changes it as its fix. Loaded only when
 * an option is unknown, so the schema is not read on every start.
 */
import { editDistance } from '../config/problem.js';
import { resolvedExperimentSchema } from '../config/resolved.js';
import { allPaths, schemaAt } from '../config/schema.js';
import { UnknownOptionError } from './command.js';

/** Names users type for a setting that is spelt otherwise in the config. */
const ALIASES: Readonly<Record<string, string>> = { lr: 'learningrate', bs: 'batchsize' };

const norm = (s: string): string => s.toLowerCase().replace(/[-_]/g, '');

/** The config paths an option name may mean: its whole path, else those its last segment names (or nearly names), shallowest first. */
export function settingsNamed(option: string): string[] {
  const paths = allPaths(resolvedExperimentSchema());
  const want = ALIASES[norm(option)] ?? norm(option);
  if (option.includes('.')) return paths.filter((p) => norm(p) === norm(option));
  const last = (p: string): string => norm(p.slice(p.lastIndexOf('.') + 1));
  const exact = paths.filter((p) => last(p) === want);
  const found = exact.length || want.length < 4 ? exact : paths.filter((p) => editDistance(last(p), want) === 1);
  // training.seed before data.split.seed: the shallower setting is the one people usually mean.
  const depth = (p: string): number => p.split('.').length;
  return found.sort((a, b) => depth(a) - depth(b));
}

/** The error with `--set PATH=VALUE` as its fix when the option names a setting and the command takes --set; else the error itself. */
export function withSettingHint(e: UnknownOptionError): UnknownOptionError {
  if (!('set' in e.command.flags)) return e;
  const [first, ...others] = settingsNamed(e.option);
  if (!first) return e;
  const value = e.value ?? (schemaAt(first)?.type === 'boolean' ? 'true' : 'VALUE');
  const also = others.length ? ` (or ${others.map((p) => `--set ${p}=...`).join(', ')})` : '';
  return new UnknownOptionError({
    command: e.command,
    option: e.option,
    value: e.value,
    guess: undefined,
    fix: `to change the setting ${first}, use --set ${first}=${value}${also}; 'exp ${e.command.name} --help' lists the options`,
    extra: `; ${first} is a setting of the config, not an option`,
  });
}
