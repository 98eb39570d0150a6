/**
 * How a run's events map onto MLflow: params, tags, metric points, the run's status and its
 * Markdown note. Pure: no IO, so what the sink sends can be read and tested in one place.
 */
import { keyProblem, LIMITS, type DatasetInput, type MetricInput, type SettableRunStatus } from '../mlflow/client.js';
import type { TrackEvent } from './events.js';

export type StartEvent = Extract<TrackEvent, { type: 'run_started' }>;
export type EndEvent = Extract<TrackEvent, { type: 'run_ended' }>;
export type DatasetEvent = Extract<TrackEvent, { type: 'dataset' }>;

/** What the run folder tells the sink for source tags: who ran it, from which file and commit. */
export interface RunFacts {
  user?: string;
  gitCommit?: string | null;
  gitBranch?: string | null;
  gitRemote?: string | null;
  sourceFile?: string;
}

/**
 * Params as MLflow stores them: dotted keys (the event's params are already flat), strings
 * kept (URLs without credentials), everything else JSON-stringified. Unset values (null) and
 * empty strings are left out: MLflow users read a missing param as unset, not the string
 * "null". Params MLflow would refuse or truncate are left out and named in `skipped`.
 */
export function paramsOf(params: Readonly<Record<string, unknown>>): { params: Record<string, string>; skipped: string[] } {
  const out: Record<string, string> = {};
  const skipped: string[] = [];
  for (const [key, raw] of Object.entries(params)) {
    if (raw === null || raw === undefined || raw === '') continue;
    const value = typeof raw === 'string' ? withoutCredentials(raw) : JSON.stringify(raw);
    const problem =
      keyProblem(key) ??
      (value === undefined ? 'no value' : value.length > LIMITS.paramValueLength ? `value longer than ${LIMITS.paramValueLength} characters` : undefined);
    if (problem || value === undefined) skipped.push(`param ${key}: ${problem ?? 'no value'}`);
    else out[key] = value;
  }
  return { params: out, skipped };
}

/** A URL's user:password@ removed (tracking.uri may carry them; every reader of the run would see them). */
export const withoutCredentials = (v: string): string => v.replace(/^([a-z][a-z0-9+.-]*:\/\/)[^/@\s]*@/i, '$1');

/** Cuts a tag value to MLflow's limit (which would otherwise truncate it silently). */
export const tagValue = (v: string): string => (v.length <= LIMITS.tagValueLength ? v : `${v.slice(0, LIMITS.tagValueLength - 1)}…`);

/** Source tags MLflow's UI reads: the experiment file, the user, and the git commit, branch and repository. */
export function sourceTags(facts: RunFacts): Record<string, string> {
  const tags: Record<string, string> = {
    'mlflow.source.name': facts.sourceFile ?? 'exp',
    'mlflow.source.type': 'LOCAL',
    'mlflow.user': facts.user ?? 'unknown',
  };
  if (facts.gitCommit) tags['mlflow.source.git.commit'] = facts.gitCommit;
  if (facts.gitBranch && facts.gitBranch !== 'HEAD') tags['mlflow.source.git.branch'] = facts.gitBranch;
  if (facts.gitRemote) tags['mlflow.source.git.repoURL'] = withoutCredentials(facts.gitRemote);
  return tags;
}

/** Tags of a child run: names, source, the run key and uid, and the event's own exp.* tags. */
export function childTags(ev: StartEvent, facts: RunFacts, uid: string): Record<string, string> {
  const tags: Record<string, string> = {};
  for (const [k, v] of Object.entries(ev.tags)) if (!keyProblem(k)) tags[k] = tagValue(String(v));
  // The folder's identity as it is now wins over what an event logged before (a folder given a new identity).
  return { ...tags, 'mlflow.runName': ev.name, ...sourceTags(facts), 'exp.key': ev.key, 'exp.uid': uid };
}

/** Tags of a sweep's parent run; the sink finds the parent again by exp.sweep_uid. */
export function parentTags(experiment: string, sweep: string, sweepUid: string, points: number | undefined, facts: RunFacts): Record<string, string> {
  const count = points === undefined ? '' : ` (${points} point${points === 1 ? '' : 's'})`;
  return {
    'mlflow.runName': sweep,
    ...sourceTags(facts),
    'exp.experiment': experiment,
    'exp.sweep': sweep,
    'exp.sweep_uid': sweepUid,
    'mlflow.note.content': `Sweep \`${sweep}\` of experiment \`${experiment}\`${count}. Each child run is one sweep point, recorded by \`exp\`.`,
  };
}

/** One metric point per number in `values`, at `step` and `time`; keys MLflow would refuse are named in `skipped`. */
export function metricsOf(values: Readonly<Record<string, number>>, step: number, time: number, what: string): { metrics: MetricInput[]; skipped: string[] } {
  const metrics: MetricInput[] = [];
  const skipped: string[] = [];
  for (const [key, value] of Object.entries(values)) {
    const problem = keyProblem(key) ?? (typeof value === 'number' ? undefined : 'not a number');
    if (problem) skipped.push(`metric ${key} (${what}): ${problem}`);
    else metrics.push({ key, value, step, timestamp: time });
  }
  return { metrics, skipped };
}

/** The dataset event as MLflow's logged inputs: one dataset, in the train and the validation context. */
export function datasetInputs(ev: DatasetEvent): DatasetInput[] {
  // One dataset per part: MLflow keeps one input per (dataset, run), so a second context of the
  // same dataset would be dropped. The digest is the data's fingerprint; the split hash says which part.
  return (['train', 'validation'] as const).map((context) => ({
    dataset: {
      name: `${ev.name}/${context}`,
      digest: ev.digest,
      source_type: 'local',
      source: JSON.stringify({ uri: ev.source }),
      profile: JSON.stringify({ ...ev.profile, split_hash: ev.split_hash, part: context }),
    },
    tags: [{ key: 'mlflow.data.context', value: context }],
  }));
}

/** Our statuses as MLflow's: pruned and killed runs were both stopped before the end. */
export const mlflowStatus = (s: EndEvent['status']): SettableRunStatus => (s === 'completed' ? 'FINISHED' : s === 'failed' ? 'FAILED' : 'KILLED');

const label = (k: string): string => k.replace(/_/g, ' ');

function cell(v: unknown): string {
  if (typeof v === 'number') return Number.isInteger(v) ? String(v) : String(Number(v.toPrecision(4)));
  if (v === null || v === undefined) return '–';
  const s = typeof v === 'string' ? v : JSON.stringify(v);
  return s.replace(/\|/g, '\\|').replace(/\n/g, ' ');
}

/** Flattens the summary one level deep (e.g. {best: {val_loss: 1}} → "best val_loss"). */
function summaryRows(summary: Readonly<Record<string, unknown>>, prefix = ''): [string, unknown][] {
  return Object.entries(summary).flatMap(([k, v]): [string, unknown][] =>
    v !== null && typeof v === 'object' && !Array.isArray(v) && prefix === '' ? summaryRows(v as Record<string, unknown>, `${k} `) : [[`${prefix}${k}`, v]],
  );
}

/**
 * The run's MLflow note (mlflow.note.content, shown as Markdown on the run page): name,
 * key, status and reason, then every entry of the run_ended summary (best epoch and metric,
 * baseline, duration). No links, so it reads the same in any UI.
 */
export function noteOf(name: string, key: string | null, ev: EndEvent): string {
  const rows: [string, unknown][] = [['key', key === null ? null : `\`${key}\``], ['status', ev.status], ...summaryRows(ev.summary ?? {})];
  const lines = [
    `### ${name}`,
    '',
    `**${ev.status}**${ev.reason ? `: ${cell(ev.reason)}` : ''}`,
    '',
    '| | |',
    '|---|---|',
    ...rows.map(([k, v]) => `| ${label(k)} | ${cell(v)} |`),
  ];
  return tagValue(lines.join('\n') + '\n');
}
