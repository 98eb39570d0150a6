/**
 * The sink's target: where a run folder is tracked (which server and experiment, and where
 * that came from), and which folder is sending (a copied folder is another one).
 */
import { realpathSync, statSync } from 'node:fs';
import { hostname } from 'node:os';
import { readRunConfig } from '../store/run.js';
import { readAnyRunState } from './sink-state.js';

/** Where a run folder is tracked, and where that came from (printed by `exp sync` and `exp status`). */
export interface Tracking {
  uri: string;
  experiment: string;
  source: 'config' | 'environment' | 'recorded';
}

/**
 * Where a run folder is tracked: tracking.uri from its config.yaml, else $MLFLOW_TRACKING_URI,
 * else the server it was last sent to (recorded in .mlflow.json), so a new shell without the
 * variable still finds it. null when tracking is off.
 */
export function trackingOf(runDir: string, env: NodeJS.ProcessEnv = process.env, pinned = false): Tracking | null {
  const cfg = readRunConfig(runDir);
  const experiment = (recorded?: string): string => cfg.tracking.experiment || env.MLFLOW_EXPERIMENT_NAME || recorded || cfg.name;
  // A queue worker's child (its launch settings' pinTracking): the worker chose the server (its own), and the job's config must not steer where its credentials go.
  if (pinned)
    return env.MLFLOW_TRACKING_URI ? { uri: env.MLFLOW_TRACKING_URI, experiment: env.MLFLOW_EXPERIMENT_NAME || experiment(), source: 'environment' } : null;
  if (cfg.tracking.uri) return { uri: cfg.tracking.uri, experiment: experiment(), source: 'config' };
  if (env.MLFLOW_TRACKING_URI) return { uri: env.MLFLOW_TRACKING_URI, experiment: experiment(), source: 'environment' };
  const rec = readAnyRunState(runDir);
  if (rec?.trackingUri) return { uri: rec.trackingUri, experiment: experiment(rec.experiment), source: 'recorded' };
  return null;
}

/** The folder's identity on this machine: a copy (or the same path on another machine) has another. */
export const folderId = (dir: string): string => {
  try {
    return `${hostname()}:${realpathSync(dir)}:${statSync(dir).ino}`;
  } catch {
    return `${hostname()}:${dir}`;
  }
};
