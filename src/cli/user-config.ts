/**
 * The user config (config/user.ts) as the commands that plan an experiment use it: found from
 * the command's environment (EXP_CONFIG, XDG_CONFIG_HOME, HOME) and working directory, and one
 * line that says its launcher defaults were used.
 */
import { homedir } from 'node:os';
import { relative } from 'node:path';
import { cwdOf, type Io } from './io.js';
import { loadUserConfig, userConfigPlace, type UserConfigResult } from '../config/user.js';
import type { Plan } from '../sweep/plan.js';

/** The user config of this command's environment; a missing file is no defaults. */
export function userConfigOf(io: Io): UserConfigResult {
  return loadUserConfig(userConfigPlace(io.env, cwdOf(io)));
}

/** A path under the home folder as ~/..., any other as given. */
function homePath(file: string, env: NodeJS.ProcessEnv): string {
  const rel = relative(env.HOME || homedir(), file);
  return rel && !rel.startsWith('..') && !rel.startsWith('/') ? `~/${rel}` : file;
}

/** "launcher defaults from ~/.config/exp/config.yaml\n" (after `indent`) when the plan took launcher settings from a user config; else ''. */
export function userConfigLine(plan: Plan, io: Io, indent = ''): string {
  return plan.userConfig ? `${indent}launcher defaults from ${homePath(plan.userConfig, io.env)}\n` : '';
}
