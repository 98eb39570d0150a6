/** What a command may touch: its streams, environment and working folder. Tests pass their own. */
export interface Io {
  stdout: { write(s: string): unknown; isTTY?: boolean; columns?: number };
  stderr: { write(s: string): unknown; isTTY?: boolean };
  env: NodeJS.ProcessEnv;
  cwd?: string;
}

/**
 * Exit statuses, the same for every command: 2 for invalid input of any kind (a config, a
 * path or option on the command line), 1 for a run or operation that failed, 130 for an
 * interrupted one, 70 for a bug in exp.
 */
export const EXIT = { ok: 0, failed: 1, invalid: 2, bug: 70, interrupted: 130 } as const;

/** The working folder commands resolve relative paths against. */
export const cwdOf = (io: Io): string => io.cwd ?? process.cwd();
