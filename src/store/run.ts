/**
 * Reading and writing a run folder's records: run.json, point.json, summary.json,
 * metrics.jsonl and config.yaml. Every write is atomic (temp file, then rename); every read
 * of a record tolerates a missing file and checks the fields readers rely on (store/check.ts),
 * so a hand-edited or foreign record is RUN_FILE_CORRUPT naming it. config.yaml is checked
 * against the resolved schema, so a hand-edited config gets the same file:line:col problems as
 * `exp validate`.
 */
import { existsSync } from 'node:fs';
import { basename } from 'node:path';
import { randomUUID } from 'node:crypto';
import { parseYaml } from '../config/load.js';
import { ConfigError, type Problem } from '../config/problem.js';
import { validateResolved } from '../config/resolved.js';
import { runKey } from '../sweep/key.js';
import type { RunConfig } from '../config/normalise.js';
import { LockedError, StoreError } from '../errors.js';
import { readFileBounded, writeFileAtomic, writeJsonAtomic } from '../util/fsx.js';
import { checkRecord, fieldProblem, readCheckedJson, type Fields } from './check.js';
import { RUN_FILES, runPath, sweepDirOf } from './layout.js';
import { describeOwner, currentLock, tryLock, type Lock } from './lock.js';
import { readSweepIndex } from './sweep-index.js';
import type { EpochLine, PointMeta, RunRecord, RunSummary } from './types.js';

/** config.yaml is written by exp and small; a bigger one is not ours. */
const MAX_CONFIG_BYTES = 1 << 20;
const MAX_METRICS_BYTES = 256 * 2 ** 20;

export const isRunFolder = (dir: string): boolean => existsSync(runPath(dir, 'config'));

/** What run.json must hold: a status, and the other fields (when there) of their types. */
const RECORD_FIELDS: Fields = {
  status: 'status',
  key: 'string?',
  uid: 'string?',
  name: 'string?',
  reason: 'string?',
  created: 'string?',
  started: 'string?',
  ended: 'string?',
  attempts: 'number?',
  pid: 'number?',
  host: 'string?',
  backend: 'object?',
  gpus: 'string?',
  launcher: 'object?',
  environment: 'object?',
  exit: 'object?',
  tags: 'record<string>?',
};

/** What summary.json must hold: a status, and the fields readers rank and compare by, of their types. */
const SUMMARY_FIELDS: Fields = {
  status: 'status',
  reason: 'string?',
  key: 'string?',
  name: 'string?',
  backend: 'string?',
  device: 'string?',
  epochs_completed: 'number?',
  epochs_planned: 'number?',
  monitor: 'string?',
  mode: 'string?',
  best: 'object|null?',
  final: 'object|null?',
  baseline: 'object?',
  duration_s: 'number?',
  images_per_second: 'object?',
  peak_rss_mb: 'number?',
  tensors: 'object?',
  params: 'object?',
  split: 'object?',
  tags: 'strings?',
};

const POINT_FIELDS: Fields = {
  uid: 'string',
  key: 'string',
  name: 'string?',
  index: 'number?',
  params: 'object?',
  experiment: 'string?',
  sweep: 'string?',
  sweep_uid: 'string?',
  created: 'string?',
};

const RECORD_FIX = 'restore it from a copy, or delete it to have the run trained again as planned';

export const readRunRecord = (dir: string): RunRecord | undefined =>
  readCheckedJson<RunRecord>(runPath(dir, 'record'), 'run.json', RECORD_FIELDS, RECORD_FIX, 1 << 20);
export const writeRunRecord = (dir: string, rec: RunRecord): void => writeJsonAtomic(runPath(dir, 'record'), rec);

const SUMMARY_FIX = 'restore it from a copy, or train the run again (exp train RUN --force) to write a new one';

/** A summary parsed from elsewhere (an MLflow artifact), checked as summary.json is; `source` names it in the error. */
export const checkSummary = (value: unknown, source: string): RunSummary => checkRecord<RunSummary>(value, source, SUMMARY_FIELDS, SUMMARY_FIX);

export const readSummary = (dir: string): RunSummary | undefined =>
  readCheckedJson<RunSummary>(runPath(dir, 'summary'), 'summary.json', SUMMARY_FIELDS, SUMMARY_FIX, 16 << 20);
export const writeSummary = (dir: string, s: RunSummary): void => writeJsonAtomic(runPath(dir, 'summary'), s);

export const writePoint = (dir: string, p: PointMeta): void => writeJsonAtomic(runPath(dir, 'point'), p);

/** The folder's point.json as it is (checked), or undefined when it has none. */
export function readPointFile(dir: string): PointMeta | undefined {
  const file = runPath(dir, 'point');
  const fix = 'restore it from a copy (its uid links the run to MLflow), or plan the experiment again';
  const p = readCheckedJson<PointMeta>(file, 'point.json', POINT_FIELDS, fix, 1 << 20);
  if (p !== undefined && (!p.uid || !p.key))
    throw new StoreError({ code: 'RUN_FILE_CORRUPT', message: `${file} is damaged: it has no uid and key`, file, fix, exit: 'failed' });
  return p;
}

/**
 * The folder's point.json. A folder written before point.json existed gets one made from its
 * sweep's index.json, its run.json or its config (and a new uid), once.
 */
export function readPoint(dir: string): PointMeta {
  // A point.json that is there but damaged is reported, never replaced: its uid links the run to its tracking.
  const p = readPointFile(dir);
  if (p) return p;
  const sweepDir = sweepDirOf(dir);
  const index = readSweepIndex(sweepDir);
  const entry = index?.points.find((e) => e.dir === basename(dir));
  const rec = readRunRecord(dir);
  let key = entry?.key ?? rec?.key;
  if (!key) {
    try {
      key = runKey(readRunConfig(dir));
    } catch {
      key = undefined;
    }
  }
  if (!key) {
    throw new StoreError({
      code: 'NOT_A_RUN_FOLDER',
      message: `${dir} has no point.json and its sweep's index.json does not name it`,
      fix: 'run folders are written by `exp run FILE --dry-run`; plan the experiment again',
      file: dir,
    });
  }
  const made: PointMeta = {
    version: 1,
    uid: randomUUID(),
    key,
    name: entry?.name ?? basename(dir),
    index: entry?.index ?? 0,
    params: entry?.params ?? {},
    experiment: index?.experiment ?? basename(sweepDirOf(sweepDir)),
    sweep: index?.sweep ?? basename(sweepDir),
    sweep_uid: index?.uid ?? `legacy-${index?.sweep ?? basename(sweepDir)}`,
    created: rec?.created ?? new Date().toISOString(),
  };
  writePoint(dir, made);
  return made;
}

export interface RunConfigResult {
  config?: RunConfig;
  problems: Problem[];
  /** The file's text, for rendering problems. */
  text?: string;
}

/** Reads and checks config.yaml against the resolved schema; problems carry file:line:col. */
export function checkRunConfig(dir: string): RunConfigResult {
  const file = runPath(dir, 'config');
  let text: string;
  try {
    text = readFileBounded(file, MAX_CONFIG_BYTES, 'config.yaml').toString('utf8');
  } catch (e) {
    const message = existsSync(file) ? (e as Error).message : `${dir} has no config.yaml: it is not a run folder`;
    return {
      problems: [
        {
          code: 'FILE_NOT_FOUND',
          message: `${message}; run folders are written by 'exp run FILE' (add --dry-run to only write them)`,
          file,
          path: '',
          line: 0,
          col: 0,
        },
      ],
    };
  }
  const parsed = parseYaml(file, text);
  if (parsed.problems.length > 0) return { problems: parsed.problems, text };
  const problems = validateResolved(parsed.value, parsed.sources, file);
  return problems.length > 0 ? { problems, text } : { config: parsed.value as RunConfig, problems, text };
}

/** config.yaml's text as written (a reproduction copies it byte for byte), read bounded. */
export const readRunConfigText = (dir: string): string => readFileBounded(runPath(dir, 'config'), MAX_CONFIG_BYTES, RUN_FILES.config).toString('utf8');

/** The run's resolved config; throws ConfigError (rendered like `exp validate`) when it is invalid. */
export function readRunConfig(dir: string): RunConfig {
  const r = checkRunConfig(dir);
  if (!r.config) throw new ConfigError({ problems: r.problems, texts: new Map(r.text === undefined ? [] : [[runPath(dir, 'config'), r.text]]) });
  return r.config;
}

const METRIC_LINE_FIELDS: Fields = { epoch: 'number', lr: 'number?', seconds: 'number?' };

/** What is wrong with one parsed metrics.jsonl line, or undefined; a metric may be null (JSON's NaN, a diverged loss). */
function metricLineProblem(value: unknown): string | undefined {
  const problem = fieldProblem(value, METRIC_LINE_FIELDS);
  if (problem !== undefined) return problem;
  const odd = Object.entries(value as Record<string, unknown>).find(([, v]) => v !== null && typeof v !== 'number');
  return odd && `its '${odd[0]}' is ${JSON.stringify(odd[1])?.slice(0, 60) ?? String(odd[1])}, not a number or null`;
}

/** One line of metrics.jsonl (1-based `n`), checked; undefined for a torn last line (training stopped while appending it). */
function metricLine(file: string, line: string, n: number, last: boolean): EpochLine | undefined {
  let problem: string | undefined;
  let value: unknown;
  try {
    value = JSON.parse(line);
    problem = metricLineProblem(value);
  } catch {
    if (last) return undefined;
    problem = 'it is not JSON';
  }
  if (problem === undefined) return value as EpochLine;
  const fix = `delete line ${n} (exp train rewrites metrics.jsonl from the checkpoint when the run resumes), or restore the file from a copy`;
  throw new StoreError({ code: 'RUN_FILE_CORRUPT', message: `${file} is damaged at line ${n}: ${problem}`, file, fix, exit: 'failed' });
}

/** Every epoch of metrics.jsonl, each line checked (a torn last line after a crash is skipped). */
export function readMetrics(dir: string): EpochLine[] {
  const file = runPath(dir, 'metrics');
  if (!existsSync(file)) return [];
  // Bounded and regular-file-only: a year of epochs is a few megabytes.
  const lines = readFileBounded(file, MAX_METRICS_BYTES, 'metrics.jsonl').toString('utf8').split('\n');
  let lastText = lines.length - 1;
  while (lastText > 0 && lines[lastText]!.trim() === '') lastText--;
  return lines.flatMap((l, i) => {
    const line = l.trim() ? metricLine(file, l, i + 1, i === lastText) : undefined;
    return line ? [line] : [];
  });
}

export const writeMetrics = (dir: string, lines: readonly EpochLine[]): void =>
  writeFileAtomic(runPath(dir, 'metrics'), lines.map((l) => JSON.stringify(l)).join('\n') + (lines.length ? '\n' : ''));

/**
 * Takes the folder's training lock, so two processes never train the same folder; throws
 * LockedError naming the live owner. The heartbeat runs in a thread of its own, so a holder
 * busy in a long kernel is not taken for dead by another machine sharing the folder.
 */
export async function lockRunFolder(dir: string): Promise<Lock> {
  const lock = await tryLock(runPath(dir, 'lock'), { heartbeat: 'thread' });
  if (lock) return lock;
  throw new LockedError({ dir, owner: describeOwner(currentLock(runPath(dir, 'lock'))?.owner) });
}

/** Whether a live process holds the folder's training lock (a stale lock does not count). */
export const runFolderBusy = (dir: string): { busy: false } | { busy: true; owner: string } => {
  const cur = currentLock(runPath(dir, 'lock'));
  return cur?.alive ? { busy: true, owner: describeOwner(cur.owner) } : { busy: false };
};
