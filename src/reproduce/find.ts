/**
 * Finding the run to reproduce: a run folder, a run key (or a prefix of one) under the runs
 * folder, or an MLflow run id. What defines it (config.yaml, the saved split) and what it
 * achieved (summary.json, or the metric history on the server) become an Original.
 */
import { existsSync } from 'node:fs';
import { basename, resolve } from 'node:path';
import { parse } from 'yaml';
import { ReproduceError } from '../errors.js';
import { clientFromEnv, MlflowError, toRecord, type MlflowClient } from '../mlflow/client.js';
import { readEvents } from '../track/events.js';
import { bestEpoch } from '../query/runs.js';
import { metricMode } from '../config/metric.js';
import { runKey } from '../sweep/key.js';
import { findByKey } from '../store/find.js';
import { RUN_FILES } from '../store/layout.js';
import { RunFolder } from '../store/folder.js';
import { checkSummary, isRunFolder } from '../store/run.js';
import type { RunEnvironment } from '../store/environment.js';
import type { RunSummary } from '../store/types.js';
import type { RunConfig } from '../config/normalise.js';

/** What a run achieved: its best epoch's metrics and the final evaluation of the best checkpoint. */
export interface Results {
  best_epoch: number | null;
  best: Record<string, number> | null;
  final: Record<string, number> | null;
}

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

export const resultsOf = (s: Pick<RunSummary, 'best' | 'final'> | undefined): Results | null =>
  s ? { best_epoch: s.best?.epoch ?? null, best: s.best?.metrics ?? null, final: s.final ?? null } : null;

/** The exp.* tags of the run's last run_started event (data fingerprint, split hash, backend). */
export function startTags(dir: string): Record<string, string> {
  const started = readEvents(dir)
    .events.filter((e) => e.type === 'run_started')
    .at(-1);
  return started?.type === 'run_started' ? started.tags : {};
}

/**
 * The original named by `spec`: a run folder; a run key or a prefix of one (at least 4 hex
 * digits), looked up under `runsDir`; or an MLflow run id (32 hex digits) on the server
 * that MLFLOW_TRACKING_URI names.
 */
export async function findOriginal(spec: string, opts: { cwd: string; runsDir: string; env: NodeJS.ProcessEnv }): Promise<Original> {
  const path = resolve(opts.cwd, spec);
  if (existsSync(path)) return fromFolder(path);
  if (/^[0-9a-f]{32}$/i.test(spec)) {
    const uri = opts.env.MLFLOW_TRACKING_URI;
    if (!uri)
      throw new ReproduceError({
        code: 'RUN_NOT_FOUND',
        message: `${spec} looks like an MLflow run id, but MLFLOW_TRACKING_URI is not set`,
        fix: 'set MLFLOW_TRACKING_URI to the tracking server that holds the run',
      });
    return fromMlflow(clientFromEnv(uri, opts.env), spec.toLowerCase());
  }
  if (/^[0-9a-f]{4,12}$/i.test(spec)) return fromFolder(findByKey(resolve(opts.cwd, opts.runsDir), spec.toLowerCase()));
  throw new ReproduceError({
    code: 'RUN_NOT_FOUND',
    message: `'${spec}' is not a run folder, a run key (12 hex digits, or a prefix of at least 4) or an MLflow run id (32 hex digits)`,
  });
}

/** The original from a run folder. */
export function fromFolder(dir: string): Original {
  if (!isRunFolder(dir)) throw new ReproduceError({ code: 'RUN_NOT_FOUND', message: `${dir} is not a run folder (it has no ${RUN_FILES.config})` });
  const run = new RunFolder(dir);
  const configText = run.configText();
  const config = run.config();
  const point = run.point();
  const record = run.record();
  const summary = run.summary();
  const split = run.split();
  const tags = startTags(dir);
  const hasSplit = split !== undefined && run.hasSplit();
  return {
    from: dir,
    dir,
    mlflow: null,
    configText,
    config,
    key: point.key,
    experiment: point.experiment,
    sweep: point.sweep,
    name: basename(dir),
    params: point.params,
    splitDir: hasSplit ? run.splitDir : null,
    splitHash: split?.hash ?? summary?.split?.hash ?? tags['exp.split_hash'] ?? null,
    fingerprint: split?.fingerprint ?? tags['exp.data_fingerprint'] ?? null,
    status: record?.status ?? null,
    backend: record?.backend ?? (summary?.backend ? { name: summary.backend, device: summary.device } : null),
    environment: record?.environment ?? null,
    gitCommit: record?.environment?.git.commit ?? null,
    results: resultsOf(summary),
    notes: [],
  };
}

/** Without a summary artifact: the best epoch from the metric histories, as checkpointing chose it. */
async function resultsFromHistory(client: MlflowClient, runId: string, config: RunConfig): Promise<Results | null> {
  const monitor = config.checkpoint.monitor;
  const names = [...new Set([monitor, 'loss', 'fbeta', 'val_loss', 'val_fbeta'])];
  const byEpoch = new Map<number, Record<string, number> & { epoch: number }>();
  for (const m of names) for (const p of await client.getMetricHistory(runId, m)) byEpoch.set(p.step, { ...byEpoch.get(p.step), epoch: p.step, [m]: p.value });
  const best = bestEpoch(
    [...byEpoch.values()].sort((a, b) => a.epoch - b.epoch),
    monitor,
    metricMode(monitor, config.checkpoint.mode),
  );
  return best ? { best_epoch: best.epoch, best: best.metrics, final: null } : null;
}

/** The swept values of an MLflow run: the paths listed in its tag exp.swept, their values from its params (JSON, else a string). */
function sweptParams(logged: Record<string, string>, tags: Record<string, string>): Record<string, unknown> {
  let swept: string[] = [];
  try {
    swept = JSON.parse(tags['exp.swept'] ?? '[]') as string[];
  } catch {
    swept = [];
  }
  if (!Array.isArray(swept)) swept = [];
  return Object.fromEntries(
    swept
      .filter((p) => typeof p === 'string' && logged[p] !== undefined)
      .map((p) => {
        let value: unknown = logged[p];
        try {
          value = JSON.parse(logged[p]!);
        } catch {
          /* a string value */
        }
        return [p, value];
      }),
  );
}

/** The original from an MLflow run recorded by exp: its config.yaml artifact, tags, and summary.json (or metric history). */
export async function fromMlflow(client: MlflowClient, runId: string): Promise<Original> {
  const text = (b: Uint8Array): string => Buffer.from(b).toString('utf8');
  let run;
  try {
    run = await client.getRun(runId);
  } catch (e) {
    if (e instanceof MlflowError && e.errorCode === 'RESOURCE_DOES_NOT_EXIST')
      throw new ReproduceError({ code: 'RUN_NOT_FOUND', message: `no run ${runId} on ${client.uri}` });
    throw e;
  }
  const tags = toRecord(run.data.tags);
  let configText: string;
  try {
    configText = text(await client.downloadArtifact(runId, RUN_FILES.config));
  } catch (e) {
    throw new ReproduceError({
      code: 'ORIGINAL_UNUSABLE',
      message: `MLflow run ${runId} has no config.yaml artifact (${(e as Error).message})`,
      fix: 'only runs recorded by exp (and synced to the end) can be reproduced',
    });
  }
  const config = parse(configText) as RunConfig;
  const key = runKey(config);
  const notes =
    tags['exp.key'] && tags['exp.key'] !== key ? [`the run's tag exp.key is ${tags['exp.key']}, but its config.yaml hashes to ${key}; the config wins`] : [];
  let summary: RunSummary | undefined;
  try {
    // Checked as a run folder's summary.json is: a foreign or damaged artifact counts as none (the metric history is used).
    summary = checkSummary(JSON.parse(text(await client.downloadArtifact(runId, RUN_FILES.summary))), `summary.json of MLflow run ${runId}`);
  } catch {
    summary = undefined;
  }
  const results = resultsOf(summary) ?? (await resultsFromHistory(client, runId, config));
  const parentId = tags['mlflow.parentRunId'];
  const sweep = parentId ? (await client.getRun(parentId).catch(() => undefined))?.info.run_name : undefined;
  const params = sweptParams(toRecord(run.data.params), tags);
  return {
    from: `MLflow run ${runId} at ${client.uri}`,
    dir: null,
    mlflow: { uri: client.uri, runId },
    configText,
    config,
    key,
    experiment: config.name,
    sweep: sweep || 'mlflow',
    name: (run.info.run_name || `run-${runId.slice(0, 8)}`).replace(/[^A-Za-z0-9._=,+-]/g, '_'),
    params,
    splitDir: null,
    splitHash: tags['exp.split_hash'] ?? summary?.split?.hash ?? null,
    fingerprint: tags['exp.data_fingerprint'] ?? null,
    status: tags['exp.status'] ?? run.info.status.toLowerCase(),
    backend: tags['exp.backend'] ? { name: tags['exp.backend'], device: summary?.device } : null,
    environment: null,
    gitCommit: tags['mlflow.source.git.commit'] ?? null,
    results,
    notes,
  };
}
