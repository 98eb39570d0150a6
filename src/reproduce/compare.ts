/**
 * Comparing a reproduction with its original: what may differ before training (code,
 * environment, data on disk), after training (data fingerprint, split, backend), and the
 * metrics side by side.
 */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import type { RunEnvironment } from '../store/environment.js';
import { RunFolder } from '../store/folder.js';
import { resultsOf, startTags, type Original, type Results } from './find.js';

/** One thing compared between the original and the reproduction; `same` is null when it cannot be told. */
export interface Check {
  topic: 'code' | 'data' | 'environment' | 'backend';
  same: boolean | null;
  message: string;
}

const short = (commit: string): string => commit.slice(0, 10);

/** What can be compared before training: the code (git), the environment, and whether the data is there. */
export function checksBefore(o: Original, now: RunEnvironment): Check[] {
  const out: Check[] = [];
  const then = o.gitCommit;
  if (!then || !now.git.commit)
    out.push({
      topic: 'code',
      same: null,
      message: `commit ${then ? short(then) : 'not recorded'} then, ${now.git.commit ? short(now.git.commit) : 'not a git checkout'} now; cannot tell whether the code changed`,
    });
  else if (then !== now.git.commit)
    out.push({ topic: 'code', same: false, message: `the original ran at commit ${short(then)}, this checkout is at ${short(now.git.commit)}` });
  else out.push({ topic: 'code', same: true, message: `commit ${short(then)}` });
  if (o.environment?.git?.dirty) out.push({ topic: 'code', same: null, message: 'the original ran with uncommitted changes, which were not recorded' });
  if (now.git.dirty) out.push({ topic: 'code', same: null, message: 'this checkout has uncommitted changes' });

  if (!o.environment) out.push({ topic: 'environment', same: null, message: "the original's environment (node, package versions) was not recorded" });
  else {
    const then = o.environment;
    const diffs = (['exp', 'node', 'platform', 'cpu_model'] as const)
      .filter((k) => then[k] !== undefined && then[k] !== now[k])
      .map((k) => `${k} ${then[k]} then, ${now[k]} now`);
    for (const [p, v] of Object.entries(then.packages ?? {}))
      if ((now.packages[p] ?? null) !== v) diffs.push(`${p} ${v ?? 'absent'} then, ${now.packages[p] ?? 'absent'} now`);
    out.push(
      diffs.length > 0
        ? { topic: 'environment', same: false, message: diffs.join('; ') }
        : { topic: 'environment', same: true, message: `node ${now.node}, exp ${now.exp}, the same package versions` },
    );
  }

  const csv = join(o.config.data.path, o.config.data.csv);
  if (!existsSync(csv)) {
    out.push({
      topic: 'data',
      same: false,
      message: o.config.data.synth
        ? `${csv} is missing; it will be generated again from data.synth (the same images, but a new data fingerprint)`
        : `${csv} is missing; training will fail unless data.path in the new config.yaml points at the data`,
    });
  }
  if (!o.splitDir)
    out.push({
      topic: 'data',
      same: null,
      message: `the original's split is not available; it is drawn again from data.split (test_size ${o.config.data.split.test_size}, seed ${o.config.data.split.seed}) and compared after training`,
    });
  return out;
}

/** What the reproduction recorded, read back from its folder. */
export function readReproduction(dir: string): {
  results: Results | null;
  backend: { name: string; device?: string } | null;
  fingerprint: string | null;
  splitHash: string | null;
} {
  const run = new RunFolder(dir);
  const summary = run.summary();
  const tags = startTags(dir);
  return {
    results: resultsOf(summary),
    backend: run.record()?.backend ?? null,
    fingerprint: tags['exp.data_fingerprint'] ?? null,
    splitHash: summary?.split?.hash ?? tags['exp.split_hash'] ?? null,
  };
}

const describeBackend = (b: { name: string; device?: string } | null): string => (b ? `${b.name}${b.device ? ` (${b.device})` : ''}` : 'unknown');

/** Same backend: the same name, and the same device where both were recorded (wasm with and without SIMD differ). */
export const sameBackend = (a: Original['backend'], b: Original['backend']): boolean =>
  a !== null && b !== null && a.name === b.name && (!a.device || !b.device || a.device === b.device);

/** What can be compared once the reproduction trained: the data it loaded, its split and its backend. */
export function checksAfter(o: Original, r: ReturnType<typeof readReproduction>): Check[] {
  const out: Check[] = [];
  const cmp = (what: string, a: string | null, b: string | null): Check =>
    a === null || b === null
      ? { topic: 'data', same: null, message: `${what} ${a ?? 'not recorded'} then, ${b ?? 'not recorded'} now` }
      : {
          topic: 'data',
          same: a === b,
          message:
            a === b
              ? `${what} ${a}`
              : `${what} ${a} then, ${b} now: ${what === 'data fingerprint' ? 'the CSV or image files changed (size or time)' : 'different images in train and validation'}`,
        };
  out.push(cmp('data fingerprint', o.fingerprint, r.fingerprint), cmp('split', o.splitHash, r.splitHash));
  const same = sameBackend(o.backend, r.backend);
  out.push({
    topic: 'backend',
    same: o.backend && r.backend ? same : null,
    message: same
      ? describeBackend(r.backend)
      : `${describeBackend(o.backend)} then, ${describeBackend(r.backend)} now: metrics are not expected to match exactly`,
  });
  return out;
}

export interface MetricRow {
  metric: string;
  original: number | null;
  reproduction: number | null;
  difference: number | null;
  relative: number | null;
}

/** Side by side: the best epoch, its metrics, and the final evaluation; rows neither run has are left out. */
export function compareResults(a: Results | null, b: Results | null): MetricRow[] {
  const pick = (r: Results | null, m: string): number | null => {
    if (!r) return null;
    if (m === 'best epoch') return r.best_epoch;
    const [part, name] = m.split(' ') as ['best' | 'final', string];
    return r[part]?.[name] ?? null;
  };
  return ['best epoch', 'best val_loss', 'best val_fbeta', 'best loss', 'best fbeta', 'final val_loss', 'final val_fbeta'].flatMap((metric) => {
    const x = pick(a, metric);
    const y = pick(b, metric);
    if (x === null && y === null) return [];
    const difference = x === null || y === null ? null : y - x;
    const relative = difference === null ? null : difference === 0 ? 0 : Math.abs(difference) / Math.max(Math.abs(x!), Math.abs(y!));
    return [{ metric, original: x, reproduction: y, difference, relative }];
  });
}
