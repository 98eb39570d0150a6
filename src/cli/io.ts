/** What a command may touch: its streams and environment. Tests pass their own. */
export interface Io {
  stdout: { write(s: string): unknown; isTTY?: boolean };
  stderr: { write(s: string): unknown; isTTY?: boolean };
  env: NodeJS.ProcessEnv;
  cwd?: string;
}

/** Exit codes, the same for every command. */
export const EXIT = { ok: 0, failed: 1, invalid: 2, usage: 64, bug: 70, interrupted: 130 } as const;

export class UsageError extends Error {}
