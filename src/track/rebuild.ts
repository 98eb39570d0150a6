/**
 * Rebuilding a run's events.jsonl from its other files, for a log damaged on disk (`exp sync
 * --rebuild-events`): run_started from point.json and config.yaml, an epoch event per line of
 * metrics.jsonl, the result and artifacts from summary.json and the files present, and
 * run_ended from run.json. The sink's cursor is reset and every event marked for checking
 * against the server, so what is already in MLflow is not sent twice.
 */
import { existsSync } from 'node:fs';
import { basename, join } from 'node:path';
import { checkpointDir, endArtifacts, runPath } from '../store/layout.js';
import { readMetrics, readPoint, readRunConfig, readRunRecord, readSummary } from '../store/run.js';
import { flatten } from '../util/object.js';
import { writeFileAtomic } from '../util/fsx.js';
import { eventLine, type LoggedEvent, type TrackEvent } from './events.js';
import { readAnyRunState, writeRunState } from './sink-state.js';
import { resultMetrics } from './results.js';

export function rebuildEvents(dir: string): number {
  const point = readPoint(dir);
  const cfg = readRunConfig(dir);
  const rec = readRunRecord(dir);
  const summary = readSummary(dir);
  const events: TrackEvent[] = [
    {
      type: 'run_started',
      key: point.key,
      name: basename(dir),
      experiment: point.experiment,
      sweep: point.sweep,
      params: flatten(cfg),
      resumed: false,
      tags: {
        'exp.uid': point.uid,
        'exp.swept': JSON.stringify(Object.keys(point.params)),
        ...(rec?.backend ? { 'exp.backend': rec.backend.name } : {}),
        ...(summary ? { 'exp.split_hash': summary.split.hash } : {}),
      },
    },
  ];
  for (const line of readMetrics(dir)) {
    const { epoch, lr: _lr, seconds: _s, ...metrics } = line;
    events.push({ type: 'epoch', epoch, metrics });
  }
  const ended = rec && rec.status !== 'running' && rec.status !== 'planned';
  if (ended && summary) events.push({ type: 'result', metrics: resultMetrics(summary.best, summary.final, summary.baseline.val_fbeta) });
  if (ended) for (const a of endArtifacts(dir)) events.push({ type: 'artifact', path: a });
  // As training logs them: the model (the best checkpoint) and the user's tags (exp tag).
  const okEnd = rec?.status === 'completed' || rec?.status === 'pruned';
  if (
    okEnd &&
    summary?.best &&
    cfg.checkpoint.save_best &&
    cfg.tracking.log_checkpoints !== 'none' &&
    existsSync(join(checkpointDir(dir, 'best'), 'state.json'))
  ) {
    events.push({ type: 'model', name: 'model', step: summary.best.epoch });
  }
  if (rec?.tags && Object.keys(rec.tags).length > 0) events.push({ type: 'tags', tags: rec.tags });
  if (ended) events.push({ type: 'run_ended', status: rec.status as Exclude<typeof rec.status, 'running' | 'planned'>, reason: rec.reason ?? '' });
  const now = Date.now();
  const logged = events.map((e, i): LoggedEvent => ({ ...e, seq: i + 1, time: now }) as LoggedEvent);
  writeFileAtomic(runPath(dir, 'events'), logged.map((e) => eventLine(e) + '\n').join(''));
  const state = readAnyRunState(dir);
  if (state) writeRunState(dir, { ...state, cursor: 0, verifyUntil: logged.length, inFlight: null, agreed: false });
  return logged.length;
}
