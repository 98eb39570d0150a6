/**
 * A typed client for an MLflow tracking server's REST API (/api/2.0/mlflow/...) and its
 * artifact proxy (/api/2.0/mlflow-artifacts/artifacts/...), on Node's global fetch.
 *
 * Checked against MLflow 3.17 (`mlflow server` with a SQLite store and proxied artifacts).
 * Keys and values are checked before sending (see mlflow-batch.ts); every failure is an
 * MlflowError with a `kind`; network errors, timeouts, 429 and 5xx are retried with backoff.
 */
import { keyProblem, prepareBatch, splitBatch, tagProblems, throwProblems } from './batch.js';
import { MlflowError, send, type HttpOptions } from './http.js';
import { DEFAULT_TUNING, SINK_TUNING, type ClientTuning } from './tuning.js';
import { parseTrackingUri } from './uri.js';
import {
  metricValue,
  type ArtifactFile,
  type BatchInput,
  type DatasetInput,
  type Experiment,
  type LoggedModelInfo,
  type Metric,
  type Run,
  type RunInfo,
  type RunTag,
  type SettableRunStatus,
  type ViewType,
} from './types.js';

export { MlflowError, type MlflowErrorKind } from './http.js';
export { LIMITS, keyProblem } from './batch.js';
export { FINAL_SYNC_TUNING, SINK_TUNING, type ClientTuning } from './tuning.js';
export * from './types.js';

export interface MlflowClientOptions {
  /** http(s) URL of the tracking server; user:password in the URL becomes basic auth. */
  uri: string;
  /** Basic auth (MLFLOW_TRACKING_USERNAME / MLFLOW_TRACKING_PASSWORD); wins over token, as in MLflow's own client. */
  username?: string;
  password?: string;
  /** Bearer token (MLFLOW_TRACKING_TOKEN). */
  token?: string;
  /** Per attempt; default 30 000 ms. */
  timeoutMs?: number;
  /** Retries after the first attempt; default 4. */
  retries?: number;
  /** First retry delay (doubling, capped at 10 s); default 250 ms. */
  backoffMs?: number;
  /**
   * After a request gets no answer (network error or timeout), every request in the next
   * `breakerMs` fails at once without being sent: a dead or hanging server costs one timeout,
   * not one per request. Default 30 000 ms; 0 disables.
   */
  breakerMs?: number;
}

export interface CreateRunInput {
  experimentId: string;
  runName?: string;
  /** Shown as the run's User; MLflow also reads the tag mlflow.user. */
  userId?: string;
  /** Milliseconds since the epoch; default now. */
  startTime?: number;
  tags?: Readonly<Record<string, string>>;
  /** Makes this a nested run: sets the tag mlflow.parentRunId. */
  parentRunId?: string;
}

export interface SearchRunsInput {
  experimentIds: readonly string[];
  /** MLflow filter syntax, e.g. "tags.`mlflow.parentRunId` = 'abc'" or "metrics.loss < 0.2". */
  filter?: string;
  /** Page size, 1..50 000; default 1000. */
  maxResults?: number;
  pageToken?: string;
  orderBy?: readonly string[];
  runViewType?: ViewType;
}

const ARTIFACT_SCHEME = 'mlflow-artifacts:';

/**
 * Encodes a '/'-separated relative artifact path. Refuses what the server's path check
 * (validate_path_is_safe) would refuse, plus '.' and empty parts: absolute paths, '..',
 * backslashes and '#'.
 */
function artifactPath(rel: string, route: string): string {
  const parts = rel.split('/');
  if (rel === '' || /[#\\\0]/.test(rel) || parts.some((p) => p === '' || p === '.' || p === '..')) {
    throwProblems(route, [`artifact path '${rel}' must be relative and '/'-separated, without '.', '..' or empty parts, '\\' or '#'`]);
  }
  return parts.map(encodeURIComponent).join('/');
}

export class MlflowClient {
  readonly uri: string;
  private readonly http: HttpOptions;
  private readonly artifactRoots = new Map<string, string>();
  private readonly breakerMs: number;
  /** Until when requests fail without being sent (the circuit is open). */
  private openUntil = 0;
  private openedBy = '';

  constructor(opts: MlflowClientOptions) {
    const parsed = parseTrackingUri(opts.uri);
    // Credentials given apart win over those in the URL.
    const username = opts.username ?? parsed.username;
    const password = opts.password ?? parsed.password;
    this.uri = parsed.uri;
    const authorization =
      username !== undefined && password !== undefined
        ? `Basic ${Buffer.from(`${username}:${password}`).toString('base64')}`
        : opts.token
          ? `Bearer ${opts.token}`
          : undefined;
    this.breakerMs = opts.breakerMs ?? DEFAULT_TUNING.breakerMs;
    this.http = {
      base: this.uri,
      authorization,
      timeoutMs: opts.timeoutMs ?? DEFAULT_TUNING.timeoutMs,
      retries: opts.retries ?? DEFAULT_TUNING.retries,
      backoffMs: opts.backoffMs ?? DEFAULT_TUNING.backoffMs,
      maxBackoffMs: DEFAULT_TUNING.maxBackoffMs,
    };
  }

  /** Sends through the circuit breaker (see MlflowClientOptions.breakerMs). */
  private async send(init: Parameters<typeof send>[1]): Promise<Uint8Array> {
    const now = Date.now();
    if (now < this.openUntil) {
      throw new MlflowError({
        code: 'MLFLOW_NETWORK',
        route: init.path.replace(/^mlflow\//, ''),
        message: `not sent: ${this.uri} did not answer a moment ago (${this.openedBy}); trying again in ${Math.ceil((this.openUntil - now) / 1000)} s`,
      });
    }
    try {
      return await send(this.http, init);
    } catch (e) {
      if (e instanceof MlflowError && (e.kind === 'network' || e.kind === 'timeout') && this.breakerMs > 0) {
        this.openUntil = Date.now() + this.breakerMs;
        this.openedBy = e.kind === 'timeout' ? 'no answer in time' : 'unreachable';
      }
      throw e;
    }
  }

  private async call<T>(method: 'GET' | 'POST' | 'PATCH', route: string, payload: Record<string, unknown>): Promise<T> {
    const init =
      method === 'GET'
        ? { method, path: `mlflow/${route}`, query: payload as Record<string, string | number | undefined> }
        : { method, path: `mlflow/${route}`, json: payload };
    let bytes: Uint8Array;
    try {
      bytes = await this.send(init);
    } catch (e) {
      throw method === 'GET' ? e : await this.explainDeleted(e); // only writes are refused for a deleted experiment
    }
    const text = Buffer.from(bytes).toString('utf8');
    try {
      return (text.trim() === '' ? {} : JSON.parse(text)) as T;
    } catch {
      throw new MlflowError({ code: 'MLFLOW_HTTP', route, status: 200, errorCode: 'BAD_RESPONSE', message: `answer is not JSON: ${text.slice(0, 200)}` });
    }
  }

  /**
   * MLflow refuses writes into a deleted experiment as "the run (or experiment) ID must be in the
   * 'active' state" (400 INVALID_PARAMETER_VALUE), the same as for a deleted run: when it is the
   * experiment, the error says so, with its remedies. Anything else is left as it is.
   */
  private async explainDeleted(e: unknown): Promise<unknown> {
    const m =
      e instanceof MlflowError && e.status === 400
        ? /The (run|experiment) (\w+) must be in the 'active' state\. Current state is deleted/.exec(e.message)
        : null;
    if (!m) return e;
    try {
      const experimentId = m[1] === 'experiment' ? m[2]! : (await this.getRun(m[2]!)).info.experiment_id;
      const exp = await this.getExperiment(experimentId);
      return exp.lifecycle_stage === 'deleted' ? this.experimentDeleted(exp, (e as MlflowError).route) : e;
    } catch {
      return e;
    }
  }

  /** The coded error for a deleted experiment: what happened and both ways out. */
  experimentDeleted(exp: Experiment, route = 'experiments/get-by-name'): MlflowError {
    return new MlflowError({
      code: 'MLFLOW_EXPERIMENT_DELETED',
      route,
      message: `experiment '${exp.name}' (id ${exp.experiment_id}) is deleted on ${this.uri} (it is in the server's trash); nothing is lost, its events wait in the run folders`,
      fix: [
        `restore it (the MLflow UI, or: MLFLOW_TRACKING_URI=${this.uri} mlflow experiments restore --experiment-id ${exp.experiment_id}), then run exp sync again;`,
        'or send the runs to another experiment: tracking.experiment: NEW in the experiment file for new sweeps, and',
        'MLFLOW_EXPERIMENT_NAME=NEW exp sync for these folders (when their config.yaml sets no tracking.experiment)',
      ].join(' '),
    });
  }

  /** The experiment with this id (deleted ones too). */
  async getExperiment(experimentId: string): Promise<Experiment> {
    const r = await this.call<{ experiment: Experiment }>('GET', 'experiments/get', { experiment_id: experimentId });
    return { ...r.experiment, tags: r.experiment.tags ?? [] };
  }

  /**
   * The experiment's id, creating it if needed, tagged mlflow.experimentKind=custom_model_development (model training) when exp
   * creates it; an existing experiment keeps its tags. Safe against a concurrent create of the same name. A deleted one is a coded
   * error (MLflow keeps its name taken).
   */
  async getOrCreateExperiment(name: string): Promise<string> {
    const existing = await this.getExperimentByName(name);
    if (existing?.lifecycle_stage === 'deleted') throw this.experimentDeleted(existing);
    if (existing) return existing.experiment_id;
    try {
      // MLflow 3 opens an experiment in the view its kind names; without one it shows the GenAI overview, not the training runs.
      const r = await this.call<{ experiment_id: string }>('POST', 'experiments/create', {
        name,
        tags: [{ key: 'mlflow.experimentKind', value: 'custom_model_development' }],
      });
      return r.experiment_id;
    } catch (e) {
      // Lost a race (MLflow answers 400 RESOURCE_ALREADY_EXISTS): the other creator's id is the one.
      if (!(e instanceof MlflowError && e.errorCode === 'RESOURCE_ALREADY_EXISTS')) throw e;
      const after = await this.getExperimentByName(name);
      if (!after) throw e;
      return after.experiment_id;
    }
  }

  /** The experiment with this name, or undefined when there is none. */
  async getExperimentByName(name: string): Promise<Experiment | undefined> {
    try {
      const r = await this.call<{ experiment: Experiment }>('GET', 'experiments/get-by-name', { experiment_name: name });
      return { ...r.experiment, tags: r.experiment.tags ?? [] };
    } catch (e) {
      if (e instanceof MlflowError && e.errorCode === 'RESOURCE_DOES_NOT_EXIST') return undefined;
      throw e;
    }
  }

  /** Creates a run (status RUNNING). Tags are checked like log-batch tags. */
  async createRun(input: CreateRunInput): Promise<RunInfo> {
    const tags: Record<string, string> = { ...input.tags };
    if (input.parentRunId !== undefined) tags['mlflow.parentRunId'] = input.parentRunId;
    throwProblems(
      'runs/create',
      Object.entries(tags).flatMap(([k, v]) => tagProblems(k, v)),
    );
    const r = await this.call<{ run: Run }>('POST', 'runs/create', {
      experiment_id: input.experimentId,
      run_name: input.runName,
      start_time: input.startTime ?? Date.now(),
      ...(input.userId ? { user_id: input.userId } : {}),
      tags: Object.entries(tags).map(([key, value]) => ({ key, value })),
    });
    return r.run.info;
  }

  /** Records datasets the run used (runs/log-inputs); each input's tags say its context (train, validation). */
  async logInputs(runId: string, datasets: readonly DatasetInput[]): Promise<void> {
    throwProblems(
      'runs/log-inputs',
      datasets.flatMap((d) => d.tags.flatMap((t) => tagProblems(t.key, t.value))),
    );
    await this.call('POST', 'runs/log-inputs', { run_id: runId, datasets });
  }

  /** Marks a run deleted (it can be restored in the UI until the server's garbage collection). */
  async deleteRun(runId: string): Promise<void> {
    await this.call('POST', 'runs/delete', { run_id: runId });
  }

  /** Sets a tag on an experiment. */
  async setExperimentTag(experimentId: string, key: string, value: string): Promise<void> {
    throwProblems('experiments/set-experiment-tag', tagProblems(key, value));
    await this.call('POST', 'experiments/set-experiment-tag', { experiment_id: experimentId, key, value });
  }

  /** Registers a model version from `source` (e.g. models:/<model_id> or runs:/<run>/model), creating the registered model when needed; returns the version. */
  async registerModel(name: string, source: string, runId: string): Promise<string> {
    try {
      await this.call('POST', 'registered-models/create', { name });
    } catch (e) {
      if (!(e instanceof MlflowError && e.errorCode === 'RESOURCE_ALREADY_EXISTS')) throw e;
    }
    const r = await this.call<{ model_version: { version: string } }>('POST', 'model-versions/create', { name, source, run_id: runId });
    return r.model_version.version;
  }

  /**
   * Creates an MLflow 3 logged model (status PENDING) produced by `sourceRunId`; its files go to
   * the returned artifact_uri, then finalizeLoggedModel makes it READY. `runs:/<run>/<name>` and
   * the UI's "Logged models" find it by its name and source run.
   */
  async createLoggedModel(input: {
    experimentId: string;
    name: string;
    sourceRunId: string;
    modelType?: string;
    params?: Record<string, string>;
    tags?: Record<string, string>;
  }): Promise<LoggedModelInfo> {
    const pairs = (o: Record<string, string> = {}): { key: string; value: string }[] => Object.entries(o).map(([key, value]) => ({ key, value }));
    const r = await this.call<{ model: { info: LoggedModelInfo } }>('POST', 'logged-models', {
      experiment_id: input.experimentId,
      name: input.name,
      source_run_id: input.sourceRunId,
      ...(input.modelType ? { model_type: input.modelType } : {}),
      params: pairs(input.params),
      tags: pairs(input.tags),
    });
    return r.model.info;
  }

  async finalizeLoggedModel(modelId: string, status: 'LOGGED_MODEL_READY' | 'LOGGED_MODEL_UPLOAD_FAILED'): Promise<LoggedModelInfo> {
    const r = await this.call<{ model: { info: LoggedModelInfo } }>('PATCH', `logged-models/${encodeURIComponent(modelId)}`, { model_id: modelId, status });
    return r.model.info;
  }

  async getLoggedModel(modelId: string): Promise<LoggedModelInfo | undefined> {
    try {
      return (await this.call<{ model: { info: LoggedModelInfo } }>('GET', `logged-models/${encodeURIComponent(modelId)}`, {})).model.info;
    } catch (e) {
      if (e instanceof MlflowError && (e.status === 404 || e.errorCode === 'RESOURCE_DOES_NOT_EXIST')) return undefined;
      throw e;
    }
  }

  /** Records models as outputs of a run (runs/outputs): the run page lists them. */
  async logOutputs(runId: string, models: readonly { modelId: string; step?: number }[]): Promise<void> {
    await this.call('POST', 'runs/outputs', { run_id: runId, models: models.map((m) => ({ model_id: m.modelId, step: m.step ?? 0 })) });
  }

  /** Sets a run's status (and end time, for a finished, failed or killed run). */
  async updateRun(runId: string, status: SettableRunStatus, endTime?: number): Promise<RunInfo> {
    const end = endTime ?? (status === 'RUNNING' ? undefined : Date.now());
    const r = await this.call<{ run_info: RunInfo }>('POST', 'runs/update', { run_id: runId, status, end_time: end });
    return r.run_info;
  }

  async setTag(runId: string, key: string, value: string): Promise<void> {
    throwProblems('runs/set-tag', tagProblems(key, value));
    await this.call('POST', 'runs/set-tag', { run_id: runId, key, value });
  }

  /**
   * Logs metrics, params and tags, split into as many runs/log-batch requests as the server's
   * limits need (sent in order). Everything is validated before the first request, so a bad
   * key sends nothing. Returns the number of requests sent.
   */
  async logBatch(runId: string, input: BatchInput): Promise<number> {
    const bodies = splitBatch(runId, prepareBatch(input, Date.now()));
    for (const body of bodies) await this.call('POST', 'runs/log-batch', { ...body });
    return bodies.length;
  }

  async getRun(runId: string): Promise<Run> {
    const r = await this.call<{ run: { info: RunInfo; data?: Partial<Run['data']> } }>('GET', 'runs/get', { run_id: runId });
    return normaliseRun(r.run);
  }

  /** One page of runs/search. */
  async searchRuns(input: SearchRunsInput): Promise<{ runs: Run[]; nextPageToken?: string }> {
    const r = await this.call<{ runs?: { info: RunInfo; data?: Partial<Run['data']> }[]; next_page_token?: string }>('POST', 'runs/search', {
      experiment_ids: input.experimentIds,
      filter: input.filter,
      max_results: input.maxResults ?? 1000,
      page_token: input.pageToken,
      order_by: input.orderBy,
      run_view_type: input.runViewType,
    });
    return { runs: (r.runs ?? []).map(normaliseRun), ...(r.next_page_token ? { nextPageToken: r.next_page_token } : {}) };
  }

  /** Every run that matches, following page tokens. */
  async *iterRuns(input: Omit<SearchRunsInput, 'pageToken'>): AsyncGenerator<Run> {
    let pageToken: string | undefined;
    do {
      const page = await this.searchRuns({ ...input, ...(pageToken ? { pageToken } : {}) });
      yield* page.runs;
      pageToken = page.nextPageToken;
    } while (pageToken);
  }

  /** Every run that matches, as an array (see iterRuns to stream). */
  async searchAllRuns(input: Omit<SearchRunsInput, 'pageToken'>): Promise<Run[]> {
    const out: Run[] = [];
    for await (const r of this.iterRuns(input)) out.push(r);
    return out;
  }

  /** Every logged point of one metric (all pages), NaN restored. */
  async getMetricHistory(runId: string, key: string): Promise<Metric[]> {
    throwProblems(
      'metrics/get-history',
      [keyProblem(key)].filter((p): p is string => p !== undefined),
    );
    const out: Metric[] = [];
    let pageToken: string | undefined;
    do {
      const r = await this.call<{ metrics?: Metric[]; next_page_token?: string }>('GET', 'metrics/get-history', {
        run_id: runId,
        metric_key: key,
        page_token: pageToken,
      });
      out.push(...(r.metrics ?? []).map((m) => ({ ...m, value: metricValue(m.value) })));
      pageToken = r.next_page_token || undefined;
    } while (pageToken);
    return out;
  }

  /**
   * The proxy path of a run's artifact root (not URL-encoded): its artifact_uri without
   * 'mlflow-artifacts:' (and without a '//host' part). `target` is a run id or an artifact URI.
   */
  async artifactRoot(target: string): Promise<string> {
    let uri = target;
    if (!target.startsWith(ARTIFACT_SCHEME)) {
      uri = this.artifactRoots.get(target) ?? (await this.getRun(target)).info.artifact_uri;
      this.artifactRoots.set(target, uri);
    }
    if (!uri.startsWith(ARTIFACT_SCHEME)) {
      throw new MlflowError({
        code: 'MLFLOW_CONFIG',
        route: 'mlflow-artifacts',
        message: `artifact root '${uri}' is not served by the tracking server's proxy (start the server with artifact serving, the default in MLflow 3)`,
      });
    }
    let rest = uri.slice(ARTIFACT_SCHEME.length);
    if (rest.startsWith('//')) rest = rest.slice(2).replace(/^[^/]*/, ''); // mlflow-artifacts://host:port/path
    return rest.replace(/^\/+|\/+$/g, '');
  }

  private async artifactUrlPath(target: string, relPath: string): Promise<string> {
    const root = (await this.artifactRoot(target)).split('/').map(encodeURIComponent).join('/');
    return `mlflow-artifacts/artifacts/${root}/${artifactPath(relPath, 'mlflow-artifacts/artifacts')}`;
  }

  /** Uploads bytes to `<artifact root>/<relPath>` through the server's artifact proxy. */
  async uploadArtifact(target: string, relPath: string, bytes: Uint8Array | string): Promise<void> {
    const path = await this.artifactUrlPath(target, relPath);
    await this.send({ method: 'PUT', path, bytes: typeof bytes === 'string' ? Buffer.from(bytes) : bytes });
  }

  /** Deletes one artifact file (or folder) through the proxy; a missing one is not an error. */
  async deleteArtifact(target: string, relPath: string): Promise<void> {
    try {
      await this.send({ method: 'DELETE', path: await this.artifactUrlPath(target, relPath) });
    } catch (e) {
      if (!(e instanceof MlflowError && (e.status === 404 || e.errorCode === 'RESOURCE_DOES_NOT_EXIST'))) throw e;
    }
  }

  /** Downloads one artifact's bytes. */
  async downloadArtifact(target: string, relPath: string): Promise<Uint8Array> {
    return this.send({ method: 'GET', path: await this.artifactUrlPath(target, relPath) });
  }

  /** Lists one directory of a run's artifacts (the root by default); paths are relative to the root. */
  async listArtifacts(target: string, relDir = ''): Promise<ArtifactFile[]> {
    const root = await this.artifactRoot(target);
    const dir = relDir.replace(/\/+$/, '');
    if (dir !== '') artifactPath(dir, 'mlflow-artifacts/artifacts'); // only to refuse '..' and the like
    const bytes = await this.send({ method: 'GET', path: 'mlflow-artifacts/artifacts', query: { path: dir ? `${root}/${dir}` : root } });
    const r = JSON.parse(Buffer.from(bytes).toString('utf8')) as { files?: { path: string; is_dir: boolean; file_size?: number }[] };
    return (r.files ?? []).map((f) => ({
      path: dir ? `${dir}/${f.path}` : f.path,
      isDir: f.is_dir,
      ...(f.file_size === undefined ? {} : { fileSize: Number(f.file_size) }),
    }));
  }
}

function normaliseRun(r: { info: RunInfo; data?: Partial<Run['data']>; inputs?: Run['inputs'] }): Run {
  const d = r.data ?? {};
  return {
    ...(r.inputs ? { inputs: r.inputs } : {}),
    info: r.info,
    data: {
      metrics: (d.metrics ?? []).map((m) => ({ ...m, value: metricValue(m.value) })),
      params: d.params ?? [],
      tags: (d.tags ?? []) as RunTag[],
    },
  };
}

/** A client for `uri` with credentials from MLflow's conventional variables (MLFLOW_TRACKING_USERNAME/PASSWORD, MLFLOW_TRACKING_TOKEN). */
export function clientFromEnv(uri: string, env: NodeJS.ProcessEnv = process.env, tuning: Partial<ClientTuning> = {}): MlflowClient {
  return new MlflowClient({
    uri,
    username: env.MLFLOW_TRACKING_USERNAME || undefined,
    password: env.MLFLOW_TRACKING_PASSWORD || undefined,
    token: env.MLFLOW_TRACKING_TOKEN || undefined,
    ...tuning,
  });
}

/** Makes (or reuses) the client for a tracking URI. */
export type ClientFor = (uri: string) => MlflowClient;

/** One client per URI (so a circuit breaker opened by one run holds for the next), from the environment's credentials. */
export function clientsFromEnv(env: NodeJS.ProcessEnv = process.env, tuning: Partial<ClientTuning> = SINK_TUNING): ClientFor {
  const cache = new Map<string, MlflowClient>();
  return (uri) => {
    let c = cache.get(uri);
    if (!c) {
      c = clientFromEnv(uri, env, tuning);
      cache.set(uri, c);
    }
    return c;
  };
}
