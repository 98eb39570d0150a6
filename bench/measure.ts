/**
 * Timing helpers. Besides wall time, every span records this process's CPU time and how long
 * the main (JS) thread was busy: on a shared machine, `cores` (CPU time / wall time) shows how
 * much of the machine a figure actually got, and the main thread's share shows what JS costs.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';

export interface Span {
  ms: number;
  /** User + system CPU time of this process, all threads. */
  cpuMs: number;
  /** Time the event loop's thread was busy (performance.eventLoopUtilization). */
  mainMs: number;
}

/** Starts a span; call the result to end it. */
export function startSpan(): () => Span {
  const t0 = performance.now(),
    c0 = process.cpuUsage(),
    e0 = performance.eventLoopUtilization();
  return () => {
    const c = process.cpuUsage(c0);
    return { ms: performance.now() - t0, cpuMs: (c.user + c.system) / 1000, mainMs: performance.eventLoopUtilization(e0).active };
  };
}

export async function timed<T>(f: () => Promise<T> | T): Promise<{ span: Span; value: T }> {
  const end = startSpan();
  const value = await f();
  return { span: end(), value };
}

/** Progress goes to stderr, so `--json` output on stdout stays clean. */
export const log = (s: string): void => {
  process.stderr.write(`[bench] ${s}\n`);
};

export const round = (v: number, digits = 3): number => +v.toFixed(digits);

/** The repository root (bench/..). */
export const ROOT = new URL('..', import.meta.url).pathname;

/**
 * The Python to run numpy / torch / Pillow with: $EXP_BENCH_PYTHON, else .venv-bench/bin/python
 * when present, else python3; the first of those that imports `module`. undefined if none does.
 */
export function findPython(module: string): string | undefined {
  const candidates = [process.env.EXP_BENCH_PYTHON, join(ROOT, '.venv-bench', 'bin', 'python'), join(ROOT, '.venv', 'bin', 'python'), 'python3'].filter(
    (p): p is string => p !== undefined && p !== '' && (!p.includes('/') || existsSync(p)),
  );
  for (const py of [...new Set(candidates)]) {
    const r = spawnSync(py, ['-c', `import ${module}`], { stdio: 'ignore', timeout: 60_000 });
    if (r.status === 0) return py;
  }
  return undefined;
}

/** Runs a Python script that prints one JSON object last on stdout. */
export function runPythonJson<T>(
  python: string,
  args: readonly string[],
  env: NodeJS.ProcessEnv = {},
  timeoutMs = 300_000,
): { ok: true; value: T } | { ok: false; error: string } {
  const r = spawnSync(python, args, { encoding: 'utf8', env: { ...process.env, ...env }, timeout: timeoutMs, maxBuffer: 1 << 24 });
  const last = r.stdout?.trim().split('\n').at(-1) ?? '';
  if (r.status !== 0 || !last.startsWith('{')) {
    return { ok: false, error: (r.error?.message ?? r.stderr?.trim().split('\n').at(-1) ?? `exit ${r.status}`) || `exit ${r.status}` };
  }
  return { ok: true, value: JSON.parse(last) as T };
}

const temps: string[] = [];

/** A fresh folder under the OS temp dir, removed by removeTempDirs() when the bench ends. */
export function tempDir(prefix: string): string {
  const d = mkdtempSync(join(tmpdir(), `exp-bench-${prefix}-`));
  temps.push(d);
  return d;
}

export function removeTempDirs(): void {
  for (const d of temps.splice(0)) rmSync(d, { recursive: true, force: true });
}
