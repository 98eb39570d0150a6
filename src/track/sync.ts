/**
 * The MLflow sink: replays a run folder's events.jsonl from its cursor and sends what is new.
 *
 *   sweep folder -> a parent run (name = sweep id; tags exp.experiment, exp.sweep)
 *   run folder   -> a child run (tag mlflow.parentRunId; exp.key = run key)
 *   run_started  -> create the child (or find it again), log params, set tags
 *   epoch        -> every metric at step=epoch, timestamp=event time
 *   artifact     -> upload the file, or every file of the folder, under the same path
 *   run_ended    -> status FINISHED/FAILED/KILLED with end time, and a Markdown note
 *
 * Sending live (after `exp run`, or after each epoch) and `exp sync` later are this one code
 * path. It never throws: a server that is down or slow leaves the rest pending (the cursor
 * in <run>/.mlflow.json only moves past an event once all of it is on the server), and the
 * next call picks up from there. Replaying is idempotent: runs are found by tag before they
 * are made, params are compared with the server's, metric points that may already be there
 * are checked against the server's history, and uploads overwrite the same path.
 */
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { basename, join } from 'node:path';
import { userInfo } from 'node:os';
import { MlflowClient, MlflowError, toRecord, type Metric } from './mlflow.js';
import { readEvents, type LoggedEvent } from './events.js';
import { readRunConfig } from './store.js';
import { childTags, metricsOf, mlflowStatus, noteOf, paramsOf, tagValue, type EndEvent, type EpochEvent, type RunFacts, type StartEvent } from './sync-map.js';
import { readRunState, writeRunState, tryLock, type RunSinkState, type SinkTarget } from './sink-state.js';
import { ensureParent, findOrCreateRun, setParentStatus, sweepDirOf, tagEquals } from './sync-runs.js';
import { runKey } from '../sweep/key.js';
import { flatten } from '../util/object.js';
import { readJson } from '../util/fsx.js';

/** Makes (or reuses) the client for a tracking URI. */
export type ClientFor = (uri: string) => MlflowClient;

/**
 * Clients from MLflow's conventional variables (credentials), one per URI, with short
 * timeouts and few retries: a sink waits for a slow server at most about a minute per call.
 */
export function clientsFromEnv(env: NodeJS.ProcessEnv = process.env): ClientFor {
  const cache = new Map<string, MlflowClient>();
  return (uri) => {
    let c = cache.get(uri);
    if (!c) {
      c = new MlflowClient({
        uri, username: env.MLFLOW_TRACKING_USERNAME || undefined, password: env.MLFLOW_TRACKING_PASSWORD || undefined,
        token: env.MLFLOW_TRACKING_TOKEN || undefined, timeoutMs: 15_000, retries: 2, backoffMs: 500,
      });
      cache.set(uri, c);
    }
    return c;
  };
}

/** Where a run folder is tracked: config tracking.uri, else $MLFLOW_TRACKING_URI; null when tracking is off. */
export function trackingOf(runDir: string, env: NodeJS.ProcessEnv = process.env): { uri: string; experiment: string } | null {
  const cfg = readRunConfig(runDir);
  const uri = cfg.tracking?.uri || env.MLFLOW_TRACKING_URI;
  if (!uri) return null;
  return { uri, experiment: cfg.tracking?.experiment || env.MLFLOW_EXPERIMENT_NAME || cfg.name };
}

export type SyncOutcome =
  | 'sent' // new events went out; none are pending
  | 'up-to-date' // nothing new to send
  | 'off' // no tracking URI
  | 'pending' // stopped early (budgetMs); the rest waits for the next call
  | 'busy' // another sync of this folder is running
  | 'failed'; // the server or the folder failed; `error` says why, `pending` what is left

export interface SyncResult {
  dir: string;
  outcome: SyncOutcome;
  /** Events sent by this call. */
  sent: number;
  /** Events still to send after this call. */
  pending: number;
  uri?: string;
  experiment?: string;
  runId?: string;
  parentRunId?: string;
  error?: string;
  /** Things left out on purpose (a param MLflow would truncate, a missing artifact file). */
  warnings: string[];
}

export interface SyncOptions {
  env?: NodeJS.ProcessEnv;
  /**
   * Servers (client URIs) that did not answer earlier in this batch: runs sent there fail at
   * once, without waiting for timeouts again. A network failure or timeout adds its server.
   */
  unreachable?: Set<string>;
  /** Start no new event after this many milliseconds (a per-epoch caller's bound); default none. */
  budgetMs?: number;
}

const errorText = (e: unknown): string => (e instanceof Error ? e.message : String(e));

/**
 * Sends a run folder's unsent events to its tracking server. Never throws; safe to call
 * again at any time (after each epoch, after the run, from `exp sync`), also concurrently.
 */
export async function syncRun(runDir: string, clients: ClientFor = clientsFromEnv(), opts: SyncOptions = {}): Promise<SyncResult> {
  const res: SyncResult = { dir: runDir, outcome: 'failed', sent: 0, pending: 0, warnings: [] };
  let client: MlflowClient;
  let target: SinkTarget;
  try {
    const tracking = trackingOf(runDir, opts.env ?? process.env);
    if (!tracking) return { ...res, outcome: 'off' };
    client = clients(tracking.uri);
    target = { trackingUri: client.uri, experiment: tracking.experiment };
  } catch (e) {
    return { ...res, error: errorText(e) };
  }
  Object.assign(res, { uri: target.trackingUri, experiment: target.experiment });
  const events = readEvents(runDir).sort((a, b) => a.seq - b.seq);
  const unsent = (cursor: number): LoggedEvent[] => events.filter((e) => e.seq > cursor);
  if (opts.unreachable?.has(target.trackingUri)) {
    const pending = unsent(readRunState(runDir, target)?.cursor ?? 0).length;
    if (pending > 0) return { ...res, error: `${target.trackingUri} did not answer earlier; not tried again`, pending };
  }
  let release: (() => void) | undefined;
  try { release = await tryLock(runDir); } catch (e) { return { ...res, error: `cannot lock ${runDir}: ${errorText(e)}` }; }
  if (!release) return { ...res, outcome: 'busy', pending: unsent(readRunState(runDir, target)?.cursor ?? 0).length };
  const sink = new RunSink(runDir, client, target, res.warnings);
  const t0 = Date.now();
  try {
    const todo = unsent(sink.state.cursor);
    for (const [i, ev] of todo.entries()) {
      if (opts.budgetMs !== undefined && i > 0 && Date.now() - t0 > opts.budgetMs) return { ...res, ...sink.ids(), outcome: 'pending', pending: todo.length - i };
      try {
        await sink.send(ev, events.at(-1)!.seq);
      } catch (e) {
        sink.uncertain(ev.seq);
        if (e instanceof MlflowError && (e.kind === 'network' || e.kind === 'timeout')) opts.unreachable?.add(target.trackingUri);
        return { ...res, ...sink.ids(), error: errorText(e), pending: todo.length - i };
      }
      sink.advance(ev.seq);
      res.sent++;
    }
    return { ...res, ...sink.ids(), outcome: todo.length === 0 ? 'up-to-date' : 'sent' };
  } catch (e) { // the folder itself failed (unreadable config, disk full): a bug or a broken folder
    return { ...res, ...sink.ids(), error: errorText(e), pending: unsent(sink.state.cursor).length };
  } finally {
    release();
  }
}

/** One sync call's view of one run folder: its state, and what it learned from the server. */
class RunSink {
  readonly state: RunSinkState;
  private readonly history = new Map<string, Metric[]>();

  constructor(private readonly dir: string, private readonly client: MlflowClient, private readonly target: SinkTarget, private readonly warnings: string[]) {
    this.state = readRunState(dir, target) ?? {
      ...target, experimentId: '', runId: null, parentRunId: null, key: null, cursor: 0, verifyUntil: 0, artifactsSent: [], inFlight: null,
    };
  }

  ids(): Pick<SyncResult, 'runId' | 'parentRunId'> {
    return { ...(this.state.runId ? { runId: this.state.runId } : {}), ...(this.state.parentRunId ? { parentRunId: this.state.parentRunId } : {}) };
  }

  private save(): void { writeRunState(this.dir, this.state); }

  /** The event `seq` failed part-way: its metric points may be on the server already. */
  uncertain(seq: number): void {
    if (this.state.runId === null) return; // nothing of this run exists yet: nothing to check
    this.state.verifyUntil = Math.max(this.state.verifyUntil, seq);
    this.save();
  }

  advance(seq: number): void {
    this.state.cursor = seq;
    if (this.state.inFlight?.seq === seq) this.state.inFlight = null;
    this.save();
  }

  /** Sends one event; `lastSeq` is the log's last (a run found again may hold everything up to it). */
  async send(ev: LoggedEvent, lastSeq: number): Promise<void> {
    if (ev.type === 'run_started') return this.start(ev, lastSeq);
    // A log without run_started (training failed before it, e.g. on missing data) still
    // deserves a child run in the sweep, with what the folder says.
    if (this.state.runId === null) await this.start({ ...this.startFromFolder(), time: ev.time }, lastSeq, true);
    if (ev.type === 'epoch') return this.epoch(ev);
    if (ev.type === 'artifact') return this.artifact(ev.seq, ev.path);
    return this.end(ev, ev.time);
  }

  private facts(): RunFacts {
    const env = readJson<{ environment?: { user?: string; git?: { commit?: string | null } } }>(join(this.dir, 'run.json'))?.environment;
    let user = env?.user;
    if (!user) try { user = userInfo().username; } catch { user = undefined; }
    return { user, gitCommit: env?.git?.commit ?? null };
  }

  private startFromFolder(): StartEvent {
    const cfg = readRunConfig(this.dir);
    const sweepDir = sweepDirOf(this.dir);
    const index = readJson<{ sweep?: string; points?: { dir: string; params: Record<string, unknown> }[] }>(join(sweepDir, 'index.json'));
    const swept = index?.points?.find((p) => p.dir === basename(this.dir))?.params ?? {};
    return {
      type: 'run_started', key: runKey(cfg), name: basename(this.dir), experiment: cfg.name, sweep: index?.sweep ?? basename(sweepDir),
      params: { ...flatten(cfg), ...Object.fromEntries(Object.entries(swept).map(([k, v]) => [`sweep.${k}`, v])) }, tags: {}, resumed: false,
    };
  }

  private async start(ev: StartEvent & { time: number }, lastSeq: number, synthetic = false): Promise<void> {
    const s = this.state;
    const facts = this.facts();
    if (!s.experimentId) s.experimentId = await this.client.getOrCreateExperiment(this.target.experiment);
    const sweepDir = sweepDirOf(this.dir);
    const parent = await ensureParent(sweepDir, this.client, this.target, s.experimentId, { experiment: ev.experiment, sweep: ev.sweep, user: facts.user ?? 'unknown' });
    if (!synthetic) await setParentStatus(sweepDir, this.client, parent, 'RUNNING'); // a point trains (again)
    s.parentRunId = parent.parentRunId;
    s.key = ev.key;
    const tags = childTags(ev, facts);
    const { params, skipped } = paramsOf(ev.params);
    this.warnings.push(...skipped);
    let fresh = false;
    if (s.runId === null) {
      const filter = `${tagEquals('exp.key', ev.key)} and ${tagEquals('mlflow.parentRunId', parent.parentRunId)}`;
      const found = await findOrCreateRun(this.client, s.experimentId, filter, () => true, async () =>
        (await this.client.createRun({ experimentId: s.experimentId, runName: ev.name, parentRunId: parent.parentRunId, tags, startTime: ev.time })).run_id);
      s.runId = found.runId;
      fresh = !found.adopted;
      // A run that was already there may hold any of this log's metric points.
      if (found.adopted) s.verifyUntil = Math.max(s.verifyUntil, lastSeq);
      this.save();
    }
    const runId = s.runId;
    if (fresh) {
      await this.client.logBatch(runId, { params });
      return;
    }
    // The run exists (a resume, a retry, or a run found again): params cannot change once
    // logged, so send only the new ones; tags are upserts; the run is running again.
    const run = await this.client.getRun(runId);
    const logged = toRecord(run.data.params);
    const fresher = Object.fromEntries(Object.entries(params).filter(([k]) => logged[k] === undefined));
    for (const [k, v] of Object.entries(params)) if (logged[k] !== undefined && logged[k] !== v) this.warnings.push(`param ${k}: the server keeps '${logged[k]}'; this attempt used '${v}'`);
    await this.client.logBatch(runId, { params: fresher, tags });
    if (run.info.status !== 'RUNNING') await this.client.updateRun(runId, 'RUNNING');
  }

  private async epoch(ev: EpochEvent): Promise<void> {
    const { metrics, skipped } = metricsOf(ev);
    this.warnings.push(...skipped);
    let todo = metrics;
    if (ev.seq <= this.state.verifyUntil) {
      todo = [];
      for (const m of metrics) {
        const h = await this.historyOf(m.key);
        if (!h.some((p) => p.step === m.step && p.timestamp === m.timestamp)) todo.push(m);
      }
    }
    if (todo.length > 0) await this.client.logBatch(this.state.runId!, { metrics: todo });
    for (const m of todo) this.history.get(m.key)?.push({ key: m.key, value: m.value, step: m.step ?? 0, timestamp: m.timestamp ?? 0 });
  }

  private async historyOf(key: string): Promise<Metric[]> {
    let h = this.history.get(key);
    if (!h) { h = await this.client.getMetricHistory(this.state.runId!, key); this.history.set(key, h); }
    return h;
  }

  private async artifact(seq: number, rel: string): Promise<void> {
    const files = listFiles(this.dir, rel);
    if (files.length === 0) { this.warnings.push(`artifact ${rel}: not in the run folder any more; skipped`); return; }
    const s = this.state;
    if (s.inFlight?.seq !== seq) s.inFlight = { seq, done: [] };
    for (const f of files) {
      if (s.inFlight.done.includes(f)) continue;
      await this.client.uploadArtifact(s.runId!, f, readFileSync(join(this.dir, f)));
      s.inFlight.done.push(f);
      if (!s.artifactsSent.includes(f)) s.artifactsSent.push(f);
      this.save();
    }
  }

  private async end(ev: EndEvent, time: number): Promise<void> {
    const tags: Record<string, string> = { 'mlflow.note.content': noteOf(basename(this.dir), this.state.key, ev), 'exp.status': ev.status };
    if (ev.reason) tags['exp.reason'] = tagValue(ev.reason);
    await this.client.logBatch(this.state.runId!, { tags });
    await this.client.updateRun(this.state.runId!, mlflowStatus(ev.status), time);
  }
}

/** Files under `rel` in the run folder ('/'-separated, sorted): `rel` itself when it is a file. */
function listFiles(runDir: string, rel: string): string[] {
  const abs = join(runDir, rel);
  if (rel.split('/').includes('..') || !existsSync(abs)) return [];
  if (!statSync(abs).isDirectory()) return [rel];
  return readdirSync(abs).filter((n) => !n.startsWith('.')).sort().flatMap((n) => listFiles(runDir, `${rel}/${n}`));
}
