/** Runs the real `exp` binary (bin/exp.js over dist/, built by `npm test`) as a user would. */
import { spawnSync, type SpawnSyncReturns } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export const ROOT = new URL('../../', import.meta.url).pathname;
export const BIN = join(ROOT, 'bin', 'exp.js');

export interface CliResult {
  code: number;
  stdout: string;
  stderr: string;
}

export function exp(args: string[], opts: { cwd?: string; env?: NodeJS.ProcessEnv; timeoutMs?: number } = {}): CliResult {
  const r: SpawnSyncReturns<string> = spawnSync(process.execPath, [BIN, ...args], {
    cwd: opts.cwd ?? ROOT,
    env: { ...process.env, ...opts.env },
    encoding: 'utf8',
    timeout: opts.timeoutMs ?? 600_000,
  });
  return { code: r.status ?? -1, stdout: r.stdout, stderr: r.stderr };
}

const made: string[] = [];
/**
 * A fresh folder under the system temp dir, removed when the test process exits (a suite run
 * otherwise leaves gigabytes of runs and datasets behind); EXP_TEST_KEEP_TMP=1 keeps them to look at.
 */
export function tempDir(prefix = 'exp-test-'): string {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  if (made.length === 0 && process.env.EXP_TEST_KEEP_TMP !== '1') {
    process.once('exit', () => {
      for (const d of made) {
        try {
          rmSync(d, { recursive: true, force: true, maxRetries: 2 });
        } catch {
          // a child still writing there: leave it to the OS's temp cleanup
        }
      }
    });
  }
  made.push(dir);
  return dir;
}

/**
 * Runs `exp ARGS` in this process through `main(argv, io)`, as the CLI does, with captured
 * streams: what the user would see, without the cost of a process per call.
 */
export async function expIn(args: string[], opts: { cwd?: string; env?: NodeJS.ProcessEnv; tty?: boolean } = {}): Promise<CliResult> {
  const { main } = await import('../../src/cli/main.js');
  let stdout = '';
  let stderr = '';
  const code = await main(args, {
    stdout: {
      write: (s: string) => {
        stdout += s;
        return true;
      },
      isTTY: opts.tty ?? false,
    },
    stderr: {
      write: (s: string) => {
        stderr += s;
        return true;
      },
      isTTY: opts.tty ?? false,
    },
    env: { ...process.env, ...opts.env },
    cwd: opts.cwd ?? ROOT,
  });
  return { code, stdout, stderr };
}
