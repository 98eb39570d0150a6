/** The environment a run was trained in, recorded in run.json so a reproduction can compare. */
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { hostname, cpus, totalmem, userInfo } from 'node:os';
import { createRequire } from 'node:module';
import { join } from 'node:path';

const require = createRequire(import.meta.url);

/**
 * An installed package's version, read from its package.json in the folders Node would search.
 * (`require('<pkg>/package.json')` fails for packages whose exports map hides it, like h5wasm.)
 */
export function pkgVersion(name: string): string | null {
  for (const dir of require.resolve.paths(name) ?? []) {
    try {
      return (JSON.parse(readFileSync(join(dir, name, 'package.json'), 'utf8')) as { version: string }).version;
    } catch {
      /* not here */
    }
  }
  return null;
}

function git(args: string[], cwd: string): string | null {
  try {
    return execFileSync('git', args, { cwd, encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim();
  } catch {
    return null;
  }
}

export interface RunEnvironment {
  exp: string;
  node: string;
  platform: string;
  host: string;
  user: string;
  cpus: number;
  cpu_model: string;
  memory_gb: number;
  packages: Record<string, string | null>;
  git: { commit: string | null; dirty: boolean | null; branch?: string | null; remote?: string | null };
}

const ROOT = new URL('../../', import.meta.url).pathname;

export function captureEnvironment(): RunEnvironment {
  const commit = git(['rev-parse', 'HEAD'], ROOT);
  const status = commit ? git(['status', '--porcelain', '--untracked-files=no'], ROOT) : null;
  const pkg = JSON.parse(readFileSync(new URL('package.json', `file://${ROOT}`), 'utf8')) as { version: string };
  let user = 'unknown';
  try {
    user = userInfo().username;
  } catch {
    /* no passwd entry in some containers */
  }
  return {
    exp: pkg.version,
    node: process.version,
    platform: `${process.platform}-${process.arch}`,
    host: hostname(),
    user,
    cpus: cpus().length,
    cpu_model: cpus()[0]?.model ?? 'unknown',
    memory_gb: Math.round(totalmem() / 2 ** 30),
    packages: Object.fromEntries(
      ['@tensorflow/tfjs', '@tensorflow/tfjs-backend-wasm', '@tensorflow/tfjs-node', '@tensorflow/tfjs-node-gpu', 'sharp', 'h5wasm'].map((n) => [
        n,
        pkgVersion(n),
      ]),
    ),
    git: {
      commit,
      dirty: status === null ? null : status.length > 0,
      branch: commit ? git(['rev-parse', '--abbrev-ref', 'HEAD'], ROOT) : null,
      // The remote as a reader may see it: no credentials (https://user:token@host/...).
      remote: commit ? (git(['config', '--get', 'remote.origin.url'], ROOT)?.replace(/^([a-z][a-z0-9+.-]*:\/\/)[^/@\s]*@/i, '$1') ?? null) : null,
    },
  };
}
