/**
 * The MLflow sink: replays a run folder's events.jsonl from its cursor and sends what is new.
 *
 *   sweep folder -> a parent run (found again by the sweep folder's uid)
 *   run folder   -> a child run (tag mlflow.parentRunId; found again by the folder's uid)
 *   run_started  -> create the child (or find it again), log params, set tags
 *   dataset      -> runs/log-inputs with the train and validation contexts
 *   epoch        -> every metric at step=epoch, timestamp=event time
 *   system       -> system/* metrics at step=sample
 *   result       -> best_*, final_*, baseline metrics (what users sort by)
 *   artifact     -> upload the file, or every file of the folder, under the same path
 *   run_ended    -> status FINISHED/FAILED/KILLED with end time, and a Markdown note
 *
 * Sending live (after each epoch, after `exp run`) and `exp sync` later are this one code
 * path. It never throws: a server that is down or slow leaves the rest pending (the cursor
 * in <run>/.mlflow.json only moves past an event once all of it is on the server), and the
 * next call picks up from there. Replaying is idempotent: runs are found by the folder's uid
 * before they are made, params are compared with the server's, metric points that may
 * already be there are checked against the server's history, uploads overwrite the same path.
 * A folder whose history disagrees with the MLflow run of the same uid (a copied folder that
 * trained on) is refused rather than merged.
 *
 * The sink's other concerns are modules of their own: where a folder is tracked (target.ts),
 * the takeover upload of staged checkpoints (takeover-upload.ts) and the logged model
 * (logged-model.ts); what each event becomes in MLflow is sync-map.ts.
 */
import { userInfo } from 'node:os';
import { basename, join } from 'node:path';
import { clientsFromEnv, MlflowError, toRecord, type ClientFor, type Metric, type MlflowClient } from '../mlflow/client.js';
import { readEvents, type LoggedEvent } from './events.js';
import { ExpError, type ErrorCode } from '../errors.js';
import { childTags, datasetInputs, metricsOf, mlflowStatus, noteOf, paramsOf, tagValue, type EndEvent, type RunFacts, type StartEvent } from './sync-map.js';
import { readRunState, sinkLock, writeRunState, type RunSinkState, type SinkContext, type SinkTarget } from './sink-state.js';
import { ensureParent, findOrCreateRun, setParentStatus, tagEquals } from './sync-runs.js';
import { refreshParent } from './sweep-parent.js';
import { startedFromFolder } from './rebuild.js';
import { folderId, trackingOf, type Tracking } from './target.js';
import { listFiles, TAKEOVER, uploadTakeover } from './takeover-upload.js';
import { logModel } from './logged-model.js';
import { RUN_FILES, sweepDirOf } from '../store/layout.js';
import { readPoint, readRunRecord } from '../store/run.js';
import { readFileBounded } from '../util/fsx.js';
import { readSweepIndex } from '../store/sweep-index.js';
import { proposalOf } from '../store/study.js';
import { describeProposal } from '../search/study.js';

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
  /** Where the tracking URI came from. */
  source?: Tracking['source'];
  runId?: string;
  parentRunId?: string;
  error?: string;
  /** How to fix `error`, when it is the folder's (a damaged log, a copied folder) or the server's (a deleted experiment). */
  fix?: string;
  /** The error's code, when it has one (e.g. MLFLOW_EXPERIMENT_DELETED). */
  code?: ErrorCode;
  /** Things left out on purpose (a param MLflow would truncate, a missing artifact file). */
  warnings: string[];
}

export interface SyncOptions {
  env?: NodeJS.ProcessEnv;
  /** Track to env's MLFLOW_TRACKING_URI only (see trackingOf): a queue worker's child. */
  pinned?: boolean;
  /** Start no new event after this many milliseconds (a per-epoch caller's bound); default none. */
  budgetMs?: number;
}

const errorText = (e: unknown): string => (e instanceof Error ? e.message : String(e));
const codeAndFix = (e: unknown): Pick<SyncResult, 'code' | 'fix'> => (e instanceof ExpError ? { code: e.code, ...(e.fix ? { fix: e.fix } : {}) } : {});

/**
 * Sends a run folder's unsent events to its tracking server. Never throws; safe to call
 * again at any time (after each epoch, after the run, from `exp sync`), also concurrently.
 */
export async function syncRun(runDir: string, clients: ClientFor = clientsFromEnv(), opts: SyncOptions = {}): Promise<SyncResult> {
  const res: SyncResult = { dir: runDir, outcome: 'failed', sent: 0, pending: 0, warnings: [] };
  let client: MlflowClient;
  let target: SinkTarget;
  try {
    const tracking = trackingOf(runDir, opts.env ?? process.env, opts.pinned);
    if (!tracking) return { ...res, outcome: 'off' };
    client = clients(tracking.uri);
    target = { trackingUri: client.uri, experiment: tracking.experiment };
    res.source = tracking.source;
  } catch (e) {
    return { ...res, error: errorText(e) };
  }
  Object.assign(res, { uri: target.trackingUri, experiment: target.experiment });
  const log = readEvents(runDir);
  const events = log.events.sort((a, b) => a.seq - b.seq);
  const unsent = (cursor: number): LoggedEvent[] => events.filter((e) => e.seq > cursor);
  if (log.damaged.length > 0) {
    const first = log.damaged[0]!;
    return {
      ...res,
      pending: unsent(readRunState(runDir, target)?.cursor ?? 0).length,
      error: `${join(runDir, RUN_FILES.events)}:${first.line}: ${first.reason}${log.damaged.length > 1 ? ` (and ${log.damaged.length - 1} more damaged line${log.damaged.length > 2 ? 's' : ''})` : ''}; nothing of this run was sent`,
      fix: `rebuild the log from the run's other files: exp sync --rebuild-events ${runDir}`,
    };
  }
  let release: (() => void) | undefined;
  try {
    release = await sinkLock(runDir);
  } catch (e) {
    return { ...res, error: `cannot lock ${runDir}: ${errorText(e)}` };
  }
  if (!release) return { ...res, outcome: 'busy', pending: unsent(readRunState(runDir, target)?.cursor ?? 0).length };
  const sink = new RunSink(runDir, client, target, res.warnings);
  const t0 = Date.now();
  try {
    const todo = unsent(sink.state.cursor);
    for (const [i, ev] of todo.entries()) {
      if (opts.budgetMs !== undefined && i > 0 && Date.now() - t0 > opts.budgetMs)
        return { ...res, ...sink.ids(), outcome: 'pending', pending: todo.length - i };
      try {
        await sink.send(ev, events);
      } catch (e) {
        sink.uncertain(ev.seq);
        return { ...res, ...sink.ids(), error: errorText(e), ...codeAndFix(e), pending: todo.length - i };
      }
      sink.advance(ev.seq);
      res.sent++;
    }
    // A point ended: the parent's summary (best child, progress, sweep table) follows.
    if (todo.some((e) => e.type === 'run_ended')) {
      try {
        res.warnings.push(...(await refreshParent(sweepDirOf(runDir), client, target)));
      } catch (e) {
        res.warnings.push(`the sweep's parent run was not updated: ${errorText(e)}`);
      }
    }
    return { ...res, ...sink.ids(), outcome: todo.length === 0 ? 'up-to-date' : 'sent' };
  } catch (e) {
    // the folder itself failed (unreadable config, disk full)
    return { ...res, ...sink.ids(), error: errorText(e), ...codeAndFix(e), pending: unsent(sink.state.cursor).length };
  } finally {
    release();
  }
}

/** The run and parent facts a child run's tags and params come from. */
function runFacts(dir: string): RunFacts {
  const env = readRunRecord(dir)?.environment;
  let user = env?.user;
  if (!user)
    try {
      user = userInfo().username;
    } catch {
      user = undefined;
    }
  let file: string | undefined;
  try {
    // The sweep's index through the store (checked, bounded); a damaged one only loses this tag.
    file = readSweepIndex(sweepDirOf(dir))?.file;
  } catch {
    file = undefined;
  }
  return { user, gitCommit: env?.git?.commit ?? null, gitBranch: env?.git?.branch ?? null, gitRemote: env?.git?.remote ?? null, sourceFile: file };
}

/** One sync call's view of one run folder: its state, and what it learned from the server. */
class RunSink implements SinkContext {
  readonly state: RunSinkState;
  private readonly history = new Map<string, Metric[]>();
  private readonly folder: string;

  constructor(
    readonly dir: string,
    readonly client: MlflowClient,
    private readonly target: SinkTarget,
    readonly warnings: string[],
  ) {
    this.folder = folderId(dir);
    const known = readRunState(dir, target);
    this.state = known ?? {
      ...target,
      experimentId: '',
      runId: null,
      parentRunId: null,
      key: null,
      uid: null,
      cursor: 0,
      verifyUntil: 0,
      artifactsSent: [],
      inFlight: null,
      folder: this.folder,
      agreed: false,
    };
    // A state written for this folder somewhere else (the folder was copied): whatever the
    // copy sends next is checked against what the original already sent.
    if (known && known.folder !== undefined && known.folder !== this.folder) {
      this.state.folder = this.folder;
      this.state.agreed = false;
      this.state.verifyUntil = Number.MAX_SAFE_INTEGER;
    }
  }

  ids(): Pick<SyncResult, 'runId' | 'parentRunId'> {
    return { ...(this.state.runId ? { runId: this.state.runId } : {}), ...(this.state.parentRunId ? { parentRunId: this.state.parentRunId } : {}) };
  }

  save(): void {
    writeRunState(this.dir, this.state);
  }

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

  /** Sends one event; `all` is the whole log (a run found again may hold any of it). */
  async send(ev: LoggedEvent, all: readonly LoggedEvent[]): Promise<void> {
    if (ev.type === 'run_started') return this.start(ev, all);
    // A log without run_started (training failed before it, e.g. on missing data) still
    // deserves a child run in the sweep, with what the folder says.
    if (this.state.runId === null) await this.start({ ...startedFromFolder(this.dir), time: ev.time }, all, true);
    if (!this.state.agreed && this.state.verifyUntil > 0) await this.checkAgreement(all);
    switch (ev.type) {
      case 'epoch':
        return this.metrics(metricsOf(ev.metrics, ev.epoch, ev.time, `epoch ${ev.epoch}`), ev.seq);
      case 'system':
        return this.metrics(metricsOf(ev.metrics, ev.step, ev.time, 'system metrics'), ev.seq);
      case 'result':
        return this.metrics(metricsOf(ev.metrics, 0, ev.time, 'results'), ev.seq);
      case 'dataset':
        return this.client.logInputs(this.state.runId!, datasetInputs(ev));
      case 'artifact':
        return this.artifact(ev.seq, ev.path);
      // A newer checkpoint later in the log supersedes this one: only the newest is uploaded.
      case 'checkpoint':
        return uploadTakeover(
          this,
          ev.seq,
          ev.path,
          ev.label,
          all.some((e) => (e.type === 'checkpoint' || e.type === 'checkpoint_done') && e.seq > ev.seq),
        );
      case 'checkpoint_done':
        return this.client.deleteArtifact(this.state.runId!, TAKEOVER);
      case 'model':
        return logModel(this, ev.name, ev.step);
      case 'tags':
        return this.client
          .logBatch(this.state.runId!, { tags: Object.fromEntries(Object.entries(ev.tags).map(([k, v]) => [k, tagValue(v)])) })
          .then(() => undefined);
      case 'run_ended':
        return this.end(ev, ev.time);
    }
  }

  private async start(ev: StartEvent & { time: number }, all: readonly LoggedEvent[], synthetic = false): Promise<void> {
    const s = this.state;
    const facts = runFacts(this.dir);
    const point = readPoint(this.dir);
    if (!s.experimentId) s.experimentId = await this.client.getOrCreateExperiment(this.target.experiment);
    const sweepDir = sweepDirOf(this.dir);
    const parent = await ensureParent(sweepDir, this.client, this.target, s.experimentId, {
      experiment: ev.experiment,
      sweep: ev.sweep,
      sweepUid: point.sweep_uid,
      facts,
    });
    if (!synthetic) await setParentStatus(sweepDir, this.client, parent, 'RUNNING'); // a point trains (again)
    s.parentRunId = parent.parentRunId;
    s.key = ev.key;
    s.uid = point.uid;
    const tags = childTags(ev, facts, point.uid);
    const { params, skipped } = paramsOf(ev.params);
    this.warnings.push(...skipped);
    let fresh = false;
    if (s.runId === null) {
      const filter = `${tagEquals('exp.uid', point.uid)}`;
      const found = await findOrCreateRun(
        this.client,
        s.experimentId,
        filter,
        () => true,
        async () =>
          (
            await this.client.createRun({
              experimentId: s.experimentId,
              runName: ev.name,
              parentRunId: parent.parentRunId,
              tags,
              startTime: ev.time,
              userId: facts.user,
            })
          ).run_id,
      );
      s.runId = found.runId;
      fresh = !found.adopted;
      // A run that was already there (another worker's, or this folder's before its state was
      // lost) may hold any of this log's metric points: check them, and its history, first.
      if (found.adopted) {
        s.verifyUntil = Math.max(s.verifyUntil, all.at(-1)?.seq ?? 0);
        s.agreed = false;
      }
      this.save();
    }
    const runId = s.runId;
    if (fresh) {
      await this.client.logBatch(runId, { params });
      return;
    }
    if (!s.agreed && s.verifyUntil > 0) await this.checkAgreement(all);
    // The run exists (a resume, a retry, a takeover, or a run found again): params cannot
    // change once logged, so send only the new ones; tags are upserts; it runs again.
    const run = await this.client.getRun(runId);
    const logged = toRecord(run.data.params);
    const unloggedParams = Object.fromEntries(Object.entries(params).filter(([k]) => logged[k] === undefined));
    for (const [k, v] of Object.entries(params))
      if (logged[k] !== undefined && logged[k] !== v) this.warnings.push(`param ${k}: the server keeps '${logged[k]}'; this attempt used '${v}'`);
    await this.client.logBatch(runId, { params: unloggedParams, tags });
    if (run.info.status !== 'RUNNING' && !synthetic) await this.client.updateRun(runId, 'RUNNING');
  }

  /**
   * Whether this folder's epochs agree with the history already in the MLflow run of its uid:
   * every epoch both have has the same loss and val_loss, and the server has no epoch the
   * folder lacks. A copied folder that trained on disagrees: it is refused, not merged.
   */
  private async checkAgreement(all: readonly LoggedEvent[]): Promise<void> {
    const local = new Map<number, Record<string, number>>();
    for (const e of all) if (e.type === 'epoch') local.set(e.epoch, e.metrics);
    const maxLocal = Math.max(0, ...local.keys());
    for (const key of ['loss', 'val_loss']) {
      for (const p of await this.historyOf(key)) {
        const mine = local.get(p.step)?.[key];
        const same =
          mine !== undefined &&
          (mine === p.value || (Number.isNaN(mine) && Number.isNaN(p.value)) || Math.abs(mine - p.value) <= 1e-12 * Math.max(1, Math.abs(mine)));
        if (!same) {
          throw new MlflowError({
            code: 'MLFLOW_CONFLICT',
            route: 'sync',
            message: `MLflow run ${this.state.runId} (the run of this folder's uid) has ${key} ${p.value} at epoch ${p.step}, but this folder has ${mine === undefined ? (p.step > maxLocal ? `only ${maxLocal} epochs` : 'no such epoch') : mine}: this folder is a copy of a run that trained on elsewhere, or it trained again`,
            fix: `to record this folder as a run of its own: exp sync --new-identity ${this.dir}`,
          });
        }
      }
    }
    this.state.agreed = true;
    this.save();
  }

  private async metrics({ metrics, skipped }: ReturnType<typeof metricsOf>, seq: number): Promise<void> {
    this.warnings.push(...skipped);
    let todo = metrics;
    if (seq <= this.state.verifyUntil) {
      todo = [];
      for (const m of metrics) {
        const h = await this.historyOf(m.key);
        // Already there from an earlier attempt (same step): the first value stands.
        if (!h.some((p) => p.step === m.step)) todo.push(m);
      }
    }
    if (todo.length > 0) await this.client.logBatch(this.state.runId!, { metrics: todo });
    for (const m of todo) this.history.get(m.key)?.push({ key: m.key, value: m.value, step: m.step ?? 0, timestamp: m.timestamp ?? 0 });
  }

  private async historyOf(key: string): Promise<Metric[]> {
    let h = this.history.get(key);
    if (!h) {
      h = await this.client.getMetricHistory(this.state.runId!, key);
      this.history.set(key, h);
    }
    return h;
  }

  private async artifact(seq: number, rel: string): Promise<void> {
    const files = listFiles(this.dir, rel);
    if (files.length === 0) {
      this.warnings.push(`artifact ${rel}: not in the run folder any more; skipped`);
      return;
    }
    await this.uploadFiles(seq, files, (f) => f);
  }

  /** Uploads files of the run folder (as `as` names them), remembering which are done should the event fail part-way. */
  async uploadFiles(seq: number, files: readonly string[], as: (f: string) => string): Promise<void> {
    const s = this.state;
    if (s.inFlight?.seq !== seq) s.inFlight = { seq, done: [] };
    for (const f of files) {
      if (s.inFlight.done.includes(f)) continue;
      // Regular files only (a file linked to /dev/zero is refused, not read without end); checkpoints reach 100s of MB.
      await this.client.uploadArtifact(s.runId!, as(f), readFileBounded(join(this.dir, f), 2 ** 31 - 1, 'run file'));
      s.inFlight.done.push(f);
      if (as(f) === f && !s.artifactsSent.includes(f)) s.artifactsSent.push(f);
      this.save();
    }
  }

  private async end(ev: EndEvent, time: number): Promise<void> {
    const status = mlflowStatus(ev.status);
    // A point another worker took over and finished is FINISHED for good: the end of an earlier
    // attempt (a dead worker's child that stopped and sent its log late) does not undo it.
    if (status !== 'FINISHED' && (await this.client.getRun(this.state.runId!)).info.status === 'FINISHED') {
      this.warnings.push(`this attempt ended ${ev.status}, but MLflow run ${this.state.runId} was finished by a later attempt; it stays FINISHED`);
      return;
    }
    const tags: Record<string, string> = { 'mlflow.note.content': noteOf(basename(this.dir), this.state.key, ev), 'exp.status': ev.status };
    if (ev.reason) tags['exp.reason'] = tagValue(ev.reason);
    // A point of an adaptive study: what its proposal was made from (exp why RUN shows the same).
    const proposal = proposalOf(this.dir);
    if (proposal) tags['exp.proposal'] = tagValue(describeProposal(proposal, 'value'));
    await this.client.logBatch(this.state.runId!, { tags });
    await this.client.updateRun(this.state.runId!, status, time);
  }
}
