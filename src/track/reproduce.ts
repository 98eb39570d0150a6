/**
 * Reproducing a run: find the original (a run folder, a run key, or an MLflow run id), copy
 * what defines it (the resolved config.yaml and the saved split) into a fresh run folder, and
 * afterwards compare what changed (code, data, environment, backend) and the metrics.
 *
 * The new folder gets a sweep folder of its own, <experiment>/<sweep>-repro-<n>/<run>/, with
 * an index.json naming the one point: it has the original's run key, and MLflow finds a
 * sweep point's child run by key under the sweep's parent, so sharing the original's sweep
 * folder would send the reproduction's metrics into the original's MLflow run.
 */
import { copyFileSync, existsSync, mkdirSync, readFileSync } from 'node:fs';
import { basename, dirname, join, resolve } from 'node:path';
import { parse } from 'yaml';
import { findRunDirs, type SweepIndex } from './store.js';
import { readEvents } from './events.js';
import { bestEpoch, modeOf } from './query.js';
import { MlflowClient, MlflowError, toRecord } from './mlflow.js';
import type { RunEnvironment } from './env.js';
import { runKey } from '../sweep/key.js';
import { readJson, writeFileAtomic, writeJsonAtomic } from '../util/fsx.js';
import type { RunConfig } from '../config/normalise.js';

export class ReproduceError extends Error {}

/** What a run achieved: its best epoch's metrics and the final evaluation of the best checkpoint. */
export interface Results { best_epoch: number | null; best: Record<string, number> | null; final: Record<string, number> | null }

export interface Original {
  /** How to name it to the user: a folder path or "MLflow run <id>". */
  from: string;
  dir: string | null;
  mlflow: { uri: string; runId: string } | null;
  configText: string;
  config: RunConfig;
  key: string;
  experiment: string;
  sweep: string;
  name: string;
  params: Record<string, unknown>;
  /** split/ files (train.txt, val.txt, split.json) when the original saved its split. */
  splitDir: string | null;
  splitHash: string | null;
  fingerprint: string | null;
  status: string | null;
  backend: { name: string; device?: string } | null;
  environment: Partial<RunEnvironment> | null;
  gitCommit: string | null;
  results: Results | null;
  /** Things noticed while reading the original, for the user. */
  notes: string[];
}

interface Summary { best?: { epoch: number; metrics: Record<string, number> } | null; final?: Record<string, number> | null; split?: { hash?: string }; backend?: string; device?: string }
interface RunJson { key?: string; status?: string; backend?: { name: string; device?: string }; environment?: RunEnvironment }

const resultsOf = (s: Summary | undefined): Results | null =>
  s ? { best_epoch: s.best?.epoch ?? null, best: s.best?.metrics ?? null, final: s.final ?? null } : null;

/** The exp.* tags of the run's last run_started event (data fingerprint, split hash, backend). */
function startTags(dir: string): Record<string, string> {
  const started = readEvents(dir).filter((e) => e.type === 'run_started').at(-1);
  return started?.type === 'run_started' ? started.tags : {};
}

const isReproduction = (dir: string): boolean => existsSync(join(dir, 'reproduction.json'));

/**
 * The original named by `spec`: a run folder; a run key or a prefix of one (at least 4 hex
 * digits), looked up under `runsDir`; or an MLflow run id (32 hex digits) on the server
 * that MLFLOW_TRACKING_URI names.
 */
export async function findOriginal(spec: string, opts: { cwd: string; runsDir: string; env: NodeJS.ProcessEnv }): Promise<Original> {
  const path = resolve(opts.cwd, spec);
  if (existsSync(path)) return fromFolder(path);
  if (/^[0-9a-f]{32}$/i.test(spec)) {
    const client = MlflowClient.fromEnv(undefined, opts.env);
    if (!client) throw new ReproduceError(`${spec} looks like an MLflow run id, but MLFLOW_TRACKING_URI is not set; set it to the tracking server that holds the run`);
    return fromMlflow(client, spec.toLowerCase());
  }
  if (/^[0-9a-f]{4,12}$/i.test(spec)) return fromFolder(findByKey(resolve(opts.cwd, opts.runsDir), spec.toLowerCase()));
  throw new ReproduceError(`'${spec}' is not a run folder, a run key (12 hex digits, or a prefix of at least 4) or an MLflow run id (32 hex digits)`);
}

/** The original from a run folder. */
export function fromFolder(dir: string): Original {
  if (!existsSync(join(dir, 'config.yaml'))) throw new ReproduceError(`${dir} is not a run folder (it has no config.yaml)`);
  const configText = readFileSync(join(dir, 'config.yaml'), 'utf8');
  const config = parse(configText) as RunConfig;
  const index = readJson<SweepIndex>(join(dirname(dir), 'index.json'));
  const record = readJson<RunJson>(join(dir, 'run.json'));
  const summary = readJson<Summary>(join(dir, 'summary.json'));
  const split = readJson<{ hash?: string; fingerprint?: string }>(join(dir, 'split', 'split.json'));
  const tags = startTags(dir);
  const hasSplit = split !== undefined && existsSync(join(dir, 'split', 'train.txt')) && existsSync(join(dir, 'split', 'val.txt'));
  return {
    from: dir, dir, mlflow: null, configText, config, key: runKey(config),
    experiment: index?.experiment ?? config.name, sweep: index?.sweep ?? basename(dirname(dir)), name: basename(dir),
    params: index?.points.find((p) => p.dir === basename(dir))?.params ?? {},
    splitDir: hasSplit ? join(dir, 'split') : null,
    splitHash: split?.hash ?? summary?.split?.hash ?? tags['exp.split_hash'] ?? null,
    fingerprint: split?.fingerprint ?? tags['exp.data_fingerprint'] ?? null,
    status: record?.status ?? null, backend: record?.backend ?? (summary?.backend ? { name: summary.backend, device: summary.device } : null),
    environment: record?.environment ?? null, gitCommit: record?.environment?.git.commit ?? null,
    results: resultsOf(summary), notes: [],
  };
}

/** The original run folder for a run key or a prefix of one, preferring originals over reproductions. */
export function findByKey(runsDir: string, prefix: string): string {
  const all = findRunDirs(runsDir).map((dir) => {
    let key = readJson<RunJson>(join(dir, 'run.json'))?.key;
    if (!key) try { key = runKey(parse(readFileSync(join(dir, 'config.yaml'), 'utf8')) as RunConfig); } catch { key = undefined; }
    return { dir, key };
  }).filter((c) => c.key?.startsWith(prefix));
  if (all.length === 0) throw new ReproduceError(`no run folder under ${runsDir} has a run key starting with '${prefix}'`);
  const keys = [...new Set(all.map((c) => c.key))];
  if (keys.length > 1) throw new ReproduceError(`'${prefix}' matches ${keys.length} run keys (${keys.join(', ')}); give more of the key`);
  const originals = all.filter((c) => !isReproduction(c.dir));
  const pool = originals.length > 0 ? originals : all;
  const done = pool.filter((c) => readJson<RunJson>(join(c.dir, 'run.json'))?.status === 'completed');
  const pick = done.length > 0 ? done : pool;
  if (pick.length > 1) throw new ReproduceError(`run key ${keys[0]} is in ${pick.length} folders; give one of them:\n${pick.map((c) => `  ${c.dir}`).join('\n')}`);
  return pick[0]!.dir;
}

/** The original from an MLflow run recorded by exp: its config.yaml artifact, tags, and summary.json (or metric history). */
export async function fromMlflow(client: MlflowClient, runId: string): Promise<Original> {
  const text = (b: Uint8Array): string => Buffer.from(b).toString('utf8');
  let run;
  try { run = await client.getRun(runId); } catch (e) {
    if (e instanceof MlflowError && e.errorCode === 'RESOURCE_DOES_NOT_EXIST') throw new ReproduceError(`no run ${runId} on ${client.uri}`);
    throw e;
  }
  const tags = toRecord(run.data.tags);
  let configText: string;
  try { configText = text(await client.downloadArtifact(runId, 'config.yaml')); } catch (e) {
    throw new ReproduceError(`MLflow run ${runId} has no config.yaml artifact (${(e as Error).message}); only runs recorded by exp (and synced to the end) can be reproduced`);
  }
  const config = parse(configText) as RunConfig;
  const key = runKey(config);
  const notes = tags['exp.key'] && tags['exp.key'] !== key ? [`the run's tag exp.key is ${tags['exp.key']}, but its config.yaml hashes to ${key}; the config wins`] : [];
  let summary: Summary | undefined;
  try { summary = JSON.parse(text(await client.downloadArtifact(runId, 'summary.json'))) as Summary; } catch { summary = undefined; }
  let results = resultsOf(summary);
  if (!results) { // no summary artifact: the best epoch from the metric histories, as checkpointing chose it
    const monitor = config.checkpoint.monitor;
    const names = [...new Set([monitor, 'loss', 'fbeta', 'val_loss', 'val_fbeta'])];
    const byEpoch = new Map<number, Record<string, number>>();
    for (const m of names) for (const p of await client.getMetricHistory(runId, m)) byEpoch.set(p.step, { ...byEpoch.get(p.step), epoch: p.step, [m]: p.value });
    const best = bestEpoch([...byEpoch.values()].sort((a, b) => a.epoch! - b.epoch!), monitor, modeOf(monitor, config.checkpoint.mode));
    results = best ? { best_epoch: best.epoch, best: best.metrics, final: null } : null;
  }
  const parentId = tags['mlflow.parentRunId'];
  const sweep = parentId ? (await client.getRun(parentId).catch(() => undefined))?.info.run_name : undefined;
  const params = Object.fromEntries(run.data.params.filter((p) => p.key.startsWith('sweep.')).map((p) => {
    let v: unknown = p.value;
    try { v = JSON.parse(p.value); } catch { /* a string param */ }
    return [p.key.slice('sweep.'.length), v];
  }));
  return {
    from: `MLflow run ${runId} at ${client.uri}`, dir: null, mlflow: { uri: client.uri, runId }, configText, config, key,
    experiment: config.name, sweep: sweep || 'mlflow', name: (run.info.run_name || `run-${runId.slice(0, 8)}`).replace(/[^A-Za-z0-9._=,+-]/g, '_'),
    params, splitDir: null, splitHash: tags['exp.split_hash'] ?? summary?.split?.hash ?? null, fingerprint: tags['exp.data_fingerprint'] ?? null,
    status: tags['exp.status'] ?? run.info.status.toLowerCase(), backend: tags['exp.backend'] ? { name: tags['exp.backend'], device: summary?.device } : null,
    environment: null, gitCommit: tags['mlflow.source.git.commit'] ?? null, results, notes,
  };
}

/**
 * Makes the reproduction's folder: <experiment>/<sweep>-repro-<n>/<run>/ next to the original's
 * sweep (or under <runsDir>/<experiment>/ for an MLflow run), holding the original's
 * config.yaml byte for byte and its saved split, which the trainer then reuses.
 */
export function prepareReproduction(o: Original, runsDir: string): string {
  const expDir = o.dir ? dirname(dirname(o.dir)) : resolve(runsDir, o.experiment);
  const base = o.sweep.replace(/-repro-\d+$/, '');
  mkdirSync(expDir, { recursive: true });
  let sweepDir = '';
  for (let n = 1; !sweepDir; n++) {
    const candidate = join(expDir, `${base}-repro-${n}`);
    try { mkdirSync(candidate); sweepDir = candidate; } catch (e) { if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e; }
  }
  const dir = join(sweepDir, o.name);
  writeFileAtomic(join(dir, 'config.yaml'), o.configText);
  if (o.splitDir) for (const f of ['train.txt', 'val.txt', 'split.json']) writeFileAtomic(join(dir, 'split', f), readFileSync(join(o.splitDir, f)));
  const original = o.dir ? readJson<SweepIndex>(join(dirname(o.dir), 'index.json')) : undefined;
  if (o.dir && existsSync(join(dirname(o.dir), 'sweep.yaml'))) copyFileSync(join(dirname(o.dir), 'sweep.yaml'), join(sweepDir, 'sweep.yaml'));
  const point = original?.points.find((p) => p.dir === o.name);
  const index: SweepIndex = {
    experiment: o.experiment, sweep: basename(sweepDir), file: original?.file ?? o.from, created: new Date().toISOString(),
    points: [{ index: 0, key: o.key, name: point?.name ?? o.name, params: o.params, dir: o.name }],
  };
  writeJsonAtomic(join(sweepDir, 'index.json'), index);
  writeJsonAtomic(join(dir, 'reproduction.json'), {
    of: { from: o.from, dir: o.dir, mlflow: o.mlflow, key: o.key, status: o.status, backend: o.backend, git_commit: o.gitCommit, split_hash: o.splitHash, data_fingerprint: o.fingerprint },
    original_results: o.results, created: index.created,
  });
  return dir;
}

/** One thing compared between the original and the reproduction; `same` is null when it cannot be told. */
export interface Check { topic: 'code' | 'data' | 'environment' | 'backend'; same: boolean | null; message: string }

const short = (commit: string): string => commit.slice(0, 10);

/** What can be compared before training: the code (git), the environment, and whether the data is there. */
export function checksBefore(o: Original, now: RunEnvironment): Check[] {
  const out: Check[] = [];
  const then = o.gitCommit;
  if (!then || !now.git.commit) out.push({ topic: 'code', same: null, message: `commit ${then ? short(then) : 'not recorded'} then, ${now.git.commit ? short(now.git.commit) : 'not a git checkout'} now; cannot tell whether the code changed` });
  else if (then !== now.git.commit) out.push({ topic: 'code', same: false, message: `the original ran at commit ${short(then)}, this checkout is at ${short(now.git.commit)}` });
  else out.push({ topic: 'code', same: true, message: `commit ${short(then)}` });
  if (o.environment?.git?.dirty) out.push({ topic: 'code', same: null, message: 'the original ran with uncommitted changes, which were not recorded' });
  if (now.git.dirty) out.push({ topic: 'code', same: null, message: 'this checkout has uncommitted changes' });

  if (!o.environment) out.push({ topic: 'environment', same: null, message: 'the original\'s environment (node, package versions) was not recorded' });
  else {
    const then = o.environment;
    const diffs = (['exp', 'node', 'platform', 'cpu_model'] as const).filter((k) => then[k] !== undefined && then[k] !== now[k]).map((k) => `${k} ${then[k]} then, ${now[k]} now`);
    for (const [p, v] of Object.entries(then.packages ?? {})) if ((now.packages[p] ?? null) !== v) diffs.push(`${p} ${v ?? 'absent'} then, ${now.packages[p] ?? 'absent'} now`);
    out.push(diffs.length > 0 ? { topic: 'environment', same: false, message: diffs.join('; ') } : { topic: 'environment', same: true, message: `node ${now.node}, exp ${now.exp}, the same package versions` });
  }

  const csv = join(o.config.data.path, o.config.data.csv);
  if (!existsSync(csv)) {
    out.push({ topic: 'data', same: false, message: o.config.data.synth
      ? `${csv} is missing; it will be generated again from data.synth (the same images, but a new data fingerprint)`
      : `${csv} is missing; training will fail unless data.path in the new config.yaml points at the data` });
  }
  if (!o.splitDir) out.push({ topic: 'data', same: null, message: `the original's split is not available; it is drawn again from data.split (test_size ${o.config.data.split.test_size}, seed ${o.config.data.split.seed}) and compared after training` });
  return out;
}

/** What the reproduction recorded, read back from its folder. */
export function readReproduction(dir: string): { results: Results | null; backend: { name: string; device?: string } | null; fingerprint: string | null; splitHash: string | null } {
  const summary = readJson<Summary>(join(dir, 'summary.json'));
  const tags = startTags(dir);
  return {
    results: resultsOf(summary), backend: readJson<RunJson>(join(dir, 'run.json'))?.backend ?? null,
    fingerprint: tags['exp.data_fingerprint'] ?? null, splitHash: summary?.split?.hash ?? tags['exp.split_hash'] ?? null,
  };
}

const describeBackend = (b: { name: string; device?: string } | null): string => (b ? `${b.name}${b.device ? ` (${b.device})` : ''}` : 'unknown');

/** Same backend: the same name, and the same device where both were recorded (wasm with and without SIMD differ). */
export const sameBackend = (a: Original['backend'], b: Original['backend']): boolean =>
  a !== null && b !== null && a.name === b.name && (!a.device || !b.device || a.device === b.device);

/** What can be compared once the reproduction trained: the data it loaded, its split and its backend. */
export function checksAfter(o: Original, r: ReturnType<typeof readReproduction>): Check[] {
  const out: Check[] = [];
  const cmp = (what: string, a: string | null, b: string | null): Check => (a === null || b === null
    ? { topic: 'data', same: null, message: `${what} ${a ?? 'not recorded'} then, ${b ?? 'not recorded'} now` }
    : { topic: 'data', same: a === b, message: a === b ? `${what} ${a}` : `${what} ${a} then, ${b} now: ${what === 'data fingerprint' ? 'the CSV or image files changed (size or time)' : 'different images in train and validation'}` });
  out.push(cmp('data fingerprint', o.fingerprint, r.fingerprint), cmp('split', o.splitHash, r.splitHash));
  const same = sameBackend(o.backend, r.backend);
  out.push({ topic: 'backend', same: o.backend && r.backend ? same : null, message: same ? describeBackend(r.backend) : `${describeBackend(o.backend)} then, ${describeBackend(r.backend)} now: metrics are not expected to match exactly` });
  return out;
}

export interface MetricRow { metric: string; original: number | null; reproduction: number | null; difference: number | null; relative: number | null }

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
