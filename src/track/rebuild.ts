/**
 * Rebuilding a run's events.jsonl from its other files, for a log damaged on disk (`exp sync
 * --rebuild-events`), with the trainer's builders (event-builders.ts) and in the trainer's
 * order: run_started from point.json, config.yaml, run.json and split/; the dataset from
 * split/; an epoch event per line of metrics.jsonl; the model, the result and the artifacts
 * from summary.json and the files present; run_ended from run.json; the user's tags last (exp
 * tag tags an ended run). Resource samples (system events), rung verdicts and takeover
 * checkpoints were seen only by the live process: they are not in any other file. The sink's
 * cursor is reset and every event marked for checking against the server, so what is already
 * in MLflow is not sent twice.
 */
import { existsSync } from 'node:fs';
import { basename, join } from 'node:path';
import { checkpointDir, checkpointStatePath, endArtifacts } from '../store/layout.js';
import { readMetrics, readPoint, readRunConfig, readRunRecord, readSummary } from '../store/run.js';
import { readSplitRecord } from '../store/split.js';
import { rewriteEvents, type EndStatus, type TrackEvent } from './events.js';
import { datasetEvent, endArtifactsOf, endEvents, epochEvent, modelEvent, runStartedEvent, tagsEvent, type EventOf } from './event-builders.js';
import { readAnyRunState, writeRunState } from './sink-state.js';

/** run_started as the folder tells it: what the trainer logged, as far as run.json and split/ keep it. */
export function startedFromFolder(dir: string): EventOf<'run_started'> {
  const split = readSplitRecord(dir);
  const backend = readRunRecord(dir)?.backend;
  return runStartedEvent(basename(dir), readRunConfig(dir), readPoint(dir), {
    resumed: false,
    ...(backend ? { backend: { name: backend.name, device: backend.device } } : {}),
    ...(split ? { splitHash: split.hash } : {}),
    ...(split?.fingerprint !== undefined ? { dataFingerprint: split.fingerprint } : {}),
  });
}

/** The events a run folder's files tell, in the order training logged them. */
export function eventsFromFolder(dir: string): TrackEvent[] {
  const cfg = readRunConfig(dir);
  const rec = readRunRecord(dir);
  const summary = readSummary(dir) ?? null;
  const split = readSplitRecord(dir);
  const events: TrackEvent[] = [startedFromFolder(dir)];
  if (split?.fingerprint !== undefined && split.train !== undefined && split.val !== undefined && split.tags) {
    const { train, val } = split;
    events.push(datasetEvent(cfg, { fingerprint: split.fingerprint, splitHash: split.hash, images: train + val, train, val, tags: split.tags.length }));
  }
  for (const { epoch, lr: _lr, seconds: _s, ...metrics } of readMetrics(dir)) events.push(epochEvent(epoch, metrics));
  if (rec && rec.status !== 'running' && rec.status !== 'planned') {
    const status: EndStatus = rec.status;
    const model = modelEvent(cfg, status, summary?.best, existsSync(checkpointStatePath(checkpointDir(dir, 'best'))));
    if (model) events.push(model);
    const artifacts = endArtifactsOf(cfg, status, endArtifacts(dir)).filter((a) => existsSync(join(dir, a)));
    events.push(...endEvents(status, rec.reason ?? '', summary, artifacts));
  }
  if (rec?.tags && Object.keys(rec.tags).length > 0) events.push(tagsEvent(rec.tags));
  return events;
}

export function rebuildEvents(dir: string): number {
  const n = rewriteEvents(dir, eventsFromFolder(dir));
  const state = readAnyRunState(dir);
  if (state) writeRunState(dir, { ...state, cursor: 0, verifyUntil: n, inFlight: null, agreed: false });
  return n;
}
