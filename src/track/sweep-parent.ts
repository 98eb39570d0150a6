/**
 * The sweep's parent run as a summary of the sweep, refreshed whenever a point ends and when a
 * sweep is synced: what varies (params sweep.<path> with their values, tag exp.swept), how far
 * it is (points_done, points_failed), which child is best by the sweep's ranking (tags
 * exp.best_run_id and exp.best_run_name, metric sweep_best_<metric>), the sweep.yaml and
 * index.json artifacts, and a Markdown note with the sweep table. Once every point has ended,
 * the sweep's report page (report.html, as exp report draws it) is uploaded and
 * tracking.register_model registers the best child's model.
 */
import { basename } from 'node:path';
import { toRecord, type MlflowClient } from '../mlflow/client.js';
import { metricOf, sweepTable, type RunRow } from '../query/runs.js';
import { rankedBy } from '../config/metric.js';
import { sweepPath } from '../store/layout.js';
import { readRunConfig } from '../store/run.js';
import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { readRunState, readSweepState, sinkLock, writeSweepState, type SinkTarget, type SweepSinkState } from './sink-state.js';
import { tagValue } from './sync-map.js';
import { MAX_JSON_BYTES, readFileBounded } from '../util/fsx.js';
import { readSweepStop } from '../store/sweep-stop.js';
import { ENDED_STATUSES } from '../store/types.js';

const ENDED = new Set<string>(ENDED_STATUSES);

const cell = (v: unknown): string =>
  v === undefined || v === null ? '' : typeof v === 'number' ? String(Number(v.toPrecision(6))) : typeof v === 'string' ? v : JSON.stringify(v);

/** What the parent shows, from the sweep folder's points as they are now. */
export function parentSummary(
  sweepDir: string,
  target: SinkTarget,
  parent?: { experimentId: string; parentRunId: string },
): {
  params: Record<string, string>;
  tags: Record<string, string>;
  metrics: Record<string, number>;
  step: number;
  ended: boolean;
  best?: RunRow;
  bestRunId?: string;
} {
  const t = sweepTable(sweepDir);
  const rows = t.rows;
  const params: Record<string, string> = { 'sweep.points': String(rows.length) };
  // Values in the sweep's own order (grid order, then draw order), not the ranking's: the same sweep shows the same params whatever its results.
  for (const p of t.paths) params[`sweep.${p}`] = tagValue([...new Set(t.points.map((r) => cell(r.params[p])))].join(', '));
  const done = rows.filter((r) => ENDED.has(r.status));
  const best = rows.find((r) => r.best && metricOf(r, t.metric) !== undefined);
  const bestRunId = best ? (readRunState(best.dir, target)?.runId ?? undefined) : undefined;
  const metrics: Record<string, number> = { points_done: done.length, points_failed: rows.filter((r) => r.status === 'failed').length };
  const shown = [...new Set(['val_loss', 'val_fbeta', 'val_fbeta_tuned', t.metric])]; // the ranking's own column too
  if (best) metrics[`sweep_best_${t.metric}`] = metricOf(best, t.metric)!;
  const header = [...t.paths, 'run', 'status', ...shown];
  const lines = [
    `Sweep \`${t.sweep}\` of experiment \`${t.experiment}\`: ${done.length} of ${rows.length} points ended, ${rankedBy(t)}, best first${best ? `; best: \`${best.name}\`` : ''}.`,
    '',
    `| ${header.join(' | ')} |`,
    `|${header.map(() => '---').join('|')}|`,
    ...rows.map((r) => `| ${[...t.paths.map((p) => cell(r.params[p])), r.name, r.status, ...shown.map((m) => cell(metricOf(r, m)))].join(' | ')} |`),
  ];
  // A sweep stopped by its budget has ended with points never started (planned): its parent ends too, with the reason.
  const stop = readSweepStop(sweepDir);
  const ended = rows.length > 0 && (done.length === rows.length || (stop !== undefined && rows.every((r) => ENDED.has(r.status) || r.status === 'planned')));
  if (stop) lines.splice(1, 0, '', `Stopped by its budget: ${stop.reason}.`);
  if (parent && ended) lines.push('', ...parentLinks(target, parent, rows));
  const tags: Record<string, string> = {
    'exp.swept': JSON.stringify(t.paths),
    'exp.rank_metric': t.metric,
    'exp.rank_mode': t.mode,
    'mlflow.note.content': tagValue(lines.join('\n')),
    ...(best ? { 'exp.best_run_name': best.name } : {}),
    ...(bestRunId ? { 'exp.best_run_id': bestRunId } : {}),
    ...(stop ? { 'exp.stop_reason': tagValue(stop.reason) } : {}),
  };
  return {
    params,
    tags,
    metrics,
    step: done.length,
    ended,
    ...(best ? { best } : {}),
    ...(bestRunId ? { bestRunId } : {}),
  };
}

/**
 * Where to look next, for a sweep that has ended: MLflow's compare page over the children
 * (parallel coordinates, scatter and contour plots of the swept params against the ranking
 * metric) and the report artifact.
 */
function parentLinks(target: SinkTarget, parent: { experimentId: string; parentRunId: string }, rows: readonly RunRow[]): string[] {
  const ui = target.trackingUri.replace(/\/+$/, '');
  const children = rows.map((r) => readRunState(r.dir, target)?.runId).filter((id): id is string => typeof id === 'string');
  const q = (v: unknown): string => encodeURIComponent(JSON.stringify(v));
  return [
    ...(children.length > 1
      ? [`Compare the points: [MLflow's compare page](${ui}/#/compare-runs?runs=${q(children)}&experiments=${q([parent.experimentId])}).`]
      : []),
    `The sweep at a glance: [report.html](${ui}/#/experiments/${parent.experimentId}/runs/${parent.parentRunId}/artifacts/report.html) (exp report draws it locally).`,
  ];
}

/** Sends the parent's summary (params once, then tags, metrics and the two files); registers the best model once the sweep has ended. */
export async function refreshParent(sweepDir: string, client: MlflowClient, target: SinkTarget): Promise<string[]> {
  // One refresh at a time per sweep folder: points ending together must not register twice.
  const release = await sinkLock(sweepDir, 60_000);
  if (!release) return ["the sweep's parent run is being updated by another process; the next sync refreshes it"];
  try {
    const state = readSweepState(sweepDir, target);
    return state ? await refresh(sweepDir, client, state, target) : [];
  } finally {
    release();
  }
}

/** sweep.yaml and index.json, read bounded (a 10,000-point index is a few MB) and only as regular files. */
const readSweepFile = (file: string): Buffer => readFileBounded(file, MAX_JSON_BYTES, basename(file));

/**
 * The sweep's report page (exp report) as the parent's artifact report.html, once every point
 * has ended. Drawing it never fails the sync: a point folder it cannot read is a warning.
 */
async function uploadReport(sweepDir: string, client: MlflowClient, parentRunId: string, warnings: string[]): Promise<void> {
  let html: string;
  try {
    const [{ gatherReport }, { reportHtml }] = await Promise.all([import('../report/data.js'), import('../report/html.js')]);
    html = reportHtml(gatherReport(sweepDir));
  } catch (e) {
    warnings.push(`the sweep report (report.html) was not drawn: ${(e as Error).message}; exp report ${sweepDir} draws it locally`);
    return;
  }
  await client.uploadArtifact(parentRunId, 'report.html', html);
}

async function refresh(sweepDir: string, client: MlflowClient, state: SweepSinkState, target: SinkTarget): Promise<string[]> {
  const warnings: string[] = [];
  const s = parentSummary(sweepDir, target, { experimentId: state.experimentId, parentRunId: state.parentRunId });
  // Unchanged since the last refresh (a sync with nothing new): nothing is sent again.
  const files = (['experiment', 'index'] as const).map((f) => sweepPath(sweepDir, f)).filter((f) => existsSync(f));
  const digest = createHash('sha256')
    .update(JSON.stringify([s.params, s.tags, s.metrics, files.map((f) => readSweepFile(f).toString('utf8'))]))
    .digest('hex')
    .slice(0, 16);
  const wantsRegistry = s.ended && s.best !== undefined && readRunConfig(s.best.dir).tracking.register_model !== null && !state.registered;
  if (state.summary === digest && !wantsRegistry) return warnings;
  // What the server has already (a state file lost, another machine's refresh): only differences go.
  const run = await client.getRun(state.parentRunId);
  const has = { params: toRecord(run.data.params), tags: toRecord(run.data.tags), metrics: new Map(run.data.metrics.map((m) => [m.key, m])) };
  const now = Date.now();
  const params = Object.fromEntries(Object.entries(s.params).filter(([k]) => has.params[k] === undefined));
  const tags = Object.fromEntries(Object.entries(s.tags).filter(([k, v]) => has.tags[k] !== v));
  const metrics = Object.entries(s.metrics)
    .filter(([k, v]) => {
      const m = has.metrics.get(k);
      return !m || m.value !== v || m.step !== s.step;
    })
    .map(([key, value]) => ({ key, value, step: s.step, timestamp: now }));
  if (Object.keys(params).length + Object.keys(tags).length + metrics.length > 0) await client.logBatch(state.parentRunId, { params, tags, metrics });
  let next: SweepSinkState = { ...state, summary: digest };
  for (const file of files) await client.uploadArtifact(state.parentRunId, basename(file), readSweepFile(file));
  if (s.ended) await uploadReport(sweepDir, client, state.parentRunId, warnings);
  const name = s.ended && s.best ? readRunConfig(s.best.dir).tracking.register_model : null;
  if (name && !state.registered && s.best && s.bestRunId) {
    const model = readRunState(s.best.dir, target)?.model;
    if (model?.ready) {
      const version = await client.registerModel(name, `models:/${model.id}`, s.bestRunId);
      next = { ...next, registered: { name, version, runId: s.bestRunId } };
      writeSweepState(sweepDir, next); // at once: a failure below must not register it again
      await client.setTag(state.parentRunId, 'exp.registered_model', `${name} v${version}`);
    } else warnings.push(`register_model ${name}: the best point (${s.best.name}) has no logged model yet; exp sync registers it once it has`);
  }
  writeSweepState(sweepDir, next);
  return warnings;
}
