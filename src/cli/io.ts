/** What a command may touch: its streams, environment and working folder. Tests pass their own. */
export interface Io {
  stdout: { write(s: string): unknown; isTTY?: boolean; columns?: number };
  stderr: { write(s: string): unknown; isTTY?: boolean };
  env: NodeJS.ProcessEnv;
  cwd?: string;
  /**
   * Ends the process now with `code`, not waiting for the command to return: only for a second
   * Ctrl-C (exp train records its end, then stops at once). bin/exp.js gives it; in-process
   * callers (tests) leave it out, and the command then ends at its next step instead.
   */
  exit?: (code: ExitCode) => void;
}

/**
 * Exit statuses, the same for every command (0 ok, 1 failed, 2 invalid input, 75 busy, 130
 * interrupted, 70 a bug in exp). Defined with the launcher-child contract, since a launcher
 * reads its child's status back; commands return them, and only main.ts and bin/ end the process.
 */
import type { ExitCode } from '../exec/protocol.js';
export { EXIT, type ExitCode } from '../exec/protocol.js';

/** The working folder commands resolve relative paths against. */
export const cwdOf = (io: Io): string => io.cwd ?? process.cwd();
