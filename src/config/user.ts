/**
 * The user config file: settings that belong to the user and the cluster, not to one
 * experiment (today a `launcher:` section, with exactly the experiment file's launcher shape).
 * It is read with the experiment file's pipeline (parseYaml, the schema, positioned problems)
 * and merged under the experiment file's `launcher:` before --set, so the precedence is:
 * schema defaults < user config < experiment file < --set. Launcher settings are not in run
 * keys or sweep ids, so a user config never changes which points exist or what they are named.
 */
import { homedir } from 'node:os';
import { isAbsolute, join, resolve } from 'node:path';
import { readTextIfPresent } from '../util/fsx.js';
import { copySubtree, mergeAt, parseYaml, removeSubtree, type ReadText, type SourceMap } from './load.js';
import type { Problem } from './problem.js';
import { inlineRefs, userConfigSchema, userConfigValidator } from './schema.js';
import type { UserConfigFile } from './types.gen.js';
import { validateWith } from './validate.js';

/** A user config is a few lines; a bigger file is not one (and is never read whole). */
export const MAX_USER_CONFIG_BYTES = 256 << 10;

/** Where exp looks for the user config, and which setting chose that place (for messages). */
export interface UserConfigPlace {
  file: string;
  from: 'EXP_CONFIG' | 'XDG_CONFIG_HOME' | 'HOME';
}

/** The user config's file name in its folder (exp/ under XDG_CONFIG_HOME or ~/.config); not a run folder's config.yaml. */
const USER_CONFIG_NAME = 'config.yaml';

/** $EXP_CONFIG if set (relative to `cwd`), else $XDG_CONFIG_HOME/exp/config.yaml (an absolute one, as the XDG spec asks), else ~/.config/exp/config.yaml. */
export function userConfigPlace(env: NodeJS.ProcessEnv, cwd: string): UserConfigPlace {
  if (env.EXP_CONFIG) return { file: resolve(cwd, env.EXP_CONFIG), from: 'EXP_CONFIG' };
  const xdg = env.XDG_CONFIG_HOME;
  if (xdg && isAbsolute(xdg)) return { file: join(xdg, 'exp', USER_CONFIG_NAME), from: 'XDG_CONFIG_HOME' };
  return { file: join(env.HOME || homedir(), '.config', 'exp', USER_CONFIG_NAME), from: 'HOME' };
}

/** A user config as read: its launcher section (undefined when it has none) and where each value was written. */
export interface UserConfig {
  file: string;
  launcher?: UserConfigFile['launcher'];
  sources: SourceMap;
}

export interface UserConfigResult {
  /** Undefined when there is no file (no defaults) or it has problems. */
  config?: UserConfig;
  problems: Problem[];
  texts: Map<string, string>;
}

const HOW_TO_FIX = 'exp reads $EXP_CONFIG, else $XDG_CONFIG_HOME/exp/config.yaml, else ~/.config/exp/config.yaml';

/** Reads the user config's text: undefined when it does not exist; a folder, FIFO, device or oversized file throws a coded error. */
export const readUserConfigFromDisk: ReadText = (path) => readTextIfPresent(path, MAX_USER_CONFIG_BYTES, 'user config');

/** Loads and checks the user config at `place`; a missing file is no defaults, silently. Problems are returned, never thrown. */
export function loadUserConfig(place: UserConfigPlace, readText: ReadText = readUserConfigFromDisk): UserConfigResult {
  const { file } = place;
  const texts = new Map<string, string>();
  let text: string | undefined;
  try {
    text = readText(file);
  } catch (e) {
    const via = place.from === 'HOME' ? "exp's default place for it" : `named by $${place.from}`;
    const message = `${(e as Error).message} (${via}); make it a regular YAML file of a few lines, or point EXP_CONFIG at one (${HOW_TO_FIX})`;
    return { problems: [{ code: 'USER_CONFIG_UNREADABLE', message, file, path: '', line: 0, col: 0 }], texts };
  }
  if (text === undefined) return { problems: [], texts };
  texts.set(file, text);
  const parsed = parseYaml(file, text);
  if (parsed.problems.length > 0) return { problems: parsed.problems, texts };
  const value = parsed.value ?? {};
  const problems = validateWith(userConfigValidator(), inlineRefs(userConfigSchema), value, parsed.sources, file);
  if (problems.length > 0) return { problems, texts };
  // Valid, so a mapping (the schema's type: object) with at most a launcher section.
  const launcher = (value as UserConfigFile).launcher;
  return { config: { file, ...(launcher ? { launcher } : {}), sources: parsed.sources }, problems: [], texts };
}

/**
 * Puts the user's launcher settings under an experiment document's own (mutates `doc` and
 * `sources`), before --set is applied. Mappings merge key by key, so an experiment that sets
 * only launcher.slurm.time keeps the user's partition; a list (sbatch, setup) or an explicit
 * null in the experiment replaces the user's value. Values taken from the user config keep
 * its file and position, so a problem found later points there.
 */
export function applyUserDefaults(doc: Record<string, unknown>, sources: SourceMap, user: UserConfig | undefined): void {
  if (!user?.launcher) return;
  const userSources: SourceMap = new Map();
  copySubtree(user.sources, ['launcher'], userSources);
  const merged =
    'launcher' in doc
      ? mergeAt(structuredClone(user.launcher), userSources, doc.launcher, sources, ['launcher'])
      : { value: structuredClone(user.launcher), sources: userSources };
  doc.launcher = merged.value;
  removeSubtree(sources, ['launcher']);
  for (const [k, v] of merged.sources) sources.set(k, v);
}
