/**
 * Shapes of MLflow's REST API (/api/2.0/mlflow/...) as the client returns them. Field names
 * are MLflow's own (snake_case), so they match its docs; repeated fields the server omits
 * when empty are always present here.
 */

export type RunStatus = 'RUNNING' | 'SCHEDULED' | 'FINISHED' | 'FAILED' | 'KILLED';
/** The statuses a client may set with runs/update. */
export type SettableRunStatus = 'RUNNING' | 'FINISHED' | 'FAILED' | 'KILLED';
export type ViewType = 'ACTIVE_ONLY' | 'DELETED_ONLY' | 'ALL';

export interface Experiment {
  experiment_id: string;
  name: string;
  artifact_location: string;
  lifecycle_stage: string;
  creation_time?: number;
  last_update_time?: number;
  tags: RunTag[];
}

export interface RunInfo {
  run_id: string;
  experiment_id: string;
  run_name: string;
  user_id: string;
  status: RunStatus;
  start_time: number;
  end_time?: number;
  /** e.g. mlflow-artifacts:/1/<run_id>/artifacts when the server proxies artifacts. */
  artifact_uri: string;
  lifecycle_stage: string;
}

/** A metric point. value is NaN for a logged NaN; MLflow stores ±Infinity as ±Number.MAX_VALUE. */
export interface Metric {
  key: string;
  value: number;
  timestamp: number;
  step: number;
}
export interface Param {
  key: string;
  value: string;
}
export interface RunTag {
  key: string;
  value: string;
}

export interface Run {
  info: RunInfo;
  data: { metrics: Metric[]; params: Param[]; tags: RunTag[] };
  /** Datasets logged with runs/log-inputs. */
  inputs?: { dataset_inputs?: DatasetInput[] };
}

/** A dataset as MLflow records it (runs/log-inputs): the UI's Datasets column shows name and digest. */
export interface Dataset {
  name: string;
  /** A short hash that identifies the data's content. */
  digest: string;
  source_type: string;
  /** Where the data is, e.g. a path or URL, as MLflow stores it (JSON text). */
  source: string;
  /** Optional JSON text. */
  schema?: string;
  profile?: string;
}

export interface DatasetInput {
  dataset: Dataset;
  tags: RunTag[];
}

export interface ArtifactFile {
  /** Relative to the run's artifact root, '/'-separated. */
  path: string;
  isDir: boolean;
  /** Bytes; absent for directories. */
  fileSize?: number;
}

/** Param values are sent as strings; numbers and booleans are converted with String(). */
export type ParamValue = string | number | boolean;

export interface MetricInput {
  key: string;
  /** Any number: NaN and ±Infinity are sent as MLflow's JSON spellings ("NaN", "Infinity"). */
  value: number;
  /** Defaults to 0. */
  step?: number;
  /** Milliseconds since the epoch; defaults to now. */
  timestamp?: number;
}

export interface BatchInput {
  metrics?: readonly MetricInput[];
  params?: Readonly<Record<string, ParamValue>>;
  tags?: Readonly<Record<string, string>>;
}

/** A metric as sent on the wire: non-finite values spelled as strings, per proto3 JSON. */
export interface WireMetric {
  key: string;
  value: number | string;
  timestamp: number;
  step: number;
}

/** One log-batch request body, within the server's limits. */
export interface WireBatch {
  run_id: string;
  metrics: WireMetric[];
  params: Param[];
  tags: RunTag[];
}

/** Reads a metric value as the server writes it ("NaN", "Infinity" or a number). */
export function metricValue(v: unknown): number {
  if (typeof v === 'number') return v;
  if (v === 'NaN') return NaN;
  if (v === 'Infinity') return Infinity;
  if (v === '-Infinity') return -Infinity;
  return Number(v);
}

/** Converts key/value pairs (tags, params) into a plain record; later keys win. */
export function toRecord(pairs: readonly { key: string; value: string }[]): Record<string, string> {
  return Object.fromEntries(pairs.map((p) => [p.key, p.value]));
}

/** An MLflow 3 logged model (LoggedModelInfo): files under artifact_uri, linked to its source run. */
export interface LoggedModelInfo {
  model_id: string;
  experiment_id: string;
  name: string;
  artifact_uri: string;
  status?: string;
  source_run_id?: string;
}
