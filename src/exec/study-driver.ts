/**
 * An adaptive sweep (sweep.tpe) as it runs: the one process holding the study's lock proposes
 * each point when a worker is free for it, from the results known then (src/search/study.ts),
 * appends the proposal to the journal (flushed) and only then writes its run folder. Continuing
 * a study (after a crash, SIGKILL or Ctrl-C) reads the journal back: every proposal made keeps
 * its folder and identity, none is made twice, and the next one is made from what is known.
 */
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { randomUUID } from 'node:crypto';
import { MAX_EXPERIMENT_BYTES, type Plan } from '../sweep/plan.js';
import { readFileBounded } from '../util/fsx.js';
import { pointOf } from '../sweep/expand.js';
import { nextProposal, type KnownTrial, type StudySettings } from '../search/study.js';
import type { Trial } from '../search/tpe.js';
import { epochMetricOf, rankingOf } from '../config/metric.js';
import { StoreError } from '../errors.js';
import { checkSweepName, configText, defaultSweepId, materializePoint, writePlan } from '../store/sweep.js';
import { runDirName, sweepDirPath, sweepPath } from '../store/layout.js';
import { readMetrics, readRunRecord } from '../store/run.js';
import { appendJournal, readJournal, type JournalEntry, type ProposalEntry, type StopEntry } from '../store/study.js';
import { describeOwner, currentLock, tryLock, type Lock } from '../store/lock.js';
import { metricOf, readRun } from '../query/runs.js';
import type { SweepIndex } from '../store/types.js';

/** The study settings of a plan with sweep.tpe (undefined for any other sweep). */
export function studySettings(plan: Plan): StudySettings | undefined {
  const tpe = plan.experiment.sweep?.tpe;
  if (!tpe) return undefined;
  const ranking = rankingOf(plan.experiment.sweep?.metric);
  return { space: tpe.params, count: tpe.count, seed: tpe.seed ?? 0, startup: tpe.startup ?? 10, metric: ranking.metric, mode: ranking.mode };
}

/** What a finished point reports back (a queue job's return value carries it): enough for TPE. */
export interface TrialResult {
  status: string;
  final?: Record<string, number> | null;
  best?: { epoch: number; metrics: Record<string, number> } | null;
  /** The last epoch's metrics line (a pruned point's last reported value). */
  last?: Record<string, number> | null;
}

/** A run folder's result as a queue worker returns it. */
export function resultOfFolder(dir: string): TrialResult {
  const status = readRunRecord(dir)?.status ?? 'planned';
  const row = readRun({ dir, sweepDir: join(dir, '..'), index: undefined, entry: undefined });
  const last = readMetrics(dir)
    .sort((a, b) => a.epoch - b.epoch)
    .at(-1);
  return { status, final: row.final, best: row.best, last: last ?? null };
}

/** A result as TPE sees it: complete with its ranking value, pruned with its last epoch's value, failed, or running. */
export function trialOfResult(r: TrialResult, settings: StudySettings, epochMetric: string): Omit<Trial, 'params'> {
  if (r.status === 'completed') {
    const value = metricOf({ final: r.final ?? null, best: r.best ?? null, baseline: null }, settings.metric);
    return value === undefined || !Number.isFinite(value) ? { state: 'failed' } : { state: 'complete', value };
  }
  if (r.status === 'pruned') return r.last ? { state: 'pruned', step: r.last.epoch!, value: r.last[epochMetric] ?? NaN } : { state: 'pruned' };
  return r.status === 'failed' ? { state: 'failed' } : { state: 'running' };
}

export class Study {
  private chain: Promise<unknown> = Promise.resolve();
  private stopped: StopEntry | undefined;
  /** Where results come from when the points train elsewhere (the queue): a proposal's result, or undefined to read its folder here. */
  results: ((p: ProposalEntry) => TrialResult | undefined) | undefined;

  private constructor(
    readonly dir: string,
    private readonly runsDir: string,
    private readonly plan: Plan,
    readonly settings: StudySettings,
    private readonly index: SweepIndex,
    private readonly entries: JournalEntry[],
    private readonly lock: Lock,
  ) {
    // A stop recorded by an earlier run is history: this run's budget decides again (a raised budget continues the study).
  }

  /**
   * Takes the study's lock (refused with LOCKED while another live process proposes for it),
   * writes the sweep folder, and brings back every proposal the journal has as its run folder.
   */
  static async open(runsDir: string, plan: Plan, sweepId = defaultSweepId(plan)): Promise<Study> {
    const settings = studySettings(plan)!;
    checkSweepName(sweepId);
    const dir = sweepDirPath(runsDir, plan.experiment.name, sweepId);
    mkdirSync(dir, { recursive: true });
    const lock = await tryLock(sweepPath(dir, 'studyLock'), { heartbeat: 'timer' });
    if (!lock) throw Study.busy(dir);
    const { index } = writePlan(runsDir, { ...plan, points: [] }, sweepId);
    let entries = readJournal(dir);
    if (!entries.some((e) => e.type === 'study')) {
      appendJournal(dir, { type: 'study', version: 1, sampler: 'tpe', settings, created: new Date().toISOString() });
      entries = readJournal(dir);
    }
    const study = new Study(dir, runsDir, plan, settings, index, entries, lock);
    for (const p of study.proposals()) if (p.duplicate_of === undefined) study.materialize(p);
    return study;
  }

  private static busy(dir: string): StoreError {
    const owner = currentLock(sweepPath(dir, 'studyLock'))?.owner;
    return new StoreError({
      code: 'LOCKED',
      message: `the study in ${dir} is being run by ${describeOwner(owner)}, which makes its proposals`,
      fix: 'wait for that exp run to end (or stop it), then run this again to continue the study',
      file: dir,
      exit: 'failed',
    });
  }

  proposals(): ProposalEntry[] {
    return this.entries.filter((e): e is ProposalEntry => e.type === 'proposal');
  }

  /** The run folders of the proposals made so far, in proposal order. */
  dirs(): string[] {
    return this.proposals()
      .filter((p) => p.duplicate_of === undefined)
      .map((p) => join(this.dir, p.dir));
  }

  /** Why the study stopped proposing before its count (a budget), if it did. */
  stopReason(): string | undefined {
    return this.stopped?.reason;
  }

  /** Every trial as TPE sees it now, in proposal order (a duplicate proposal shares its original's result). */
  known(): KnownTrial[] {
    const epochMetric = epochMetricOf(rankingOf({ name: this.settings.metric, mode: this.settings.mode })) ?? this.plan.experiment.checkpoint.monitor;
    const byIndex = new Map<number, Omit<Trial, 'params'>>();
    return this.proposals().map((p) => {
      const result = p.duplicate_of === undefined ? (this.results?.(p) ?? resultOfFolder(join(this.dir, p.dir))) : undefined;
      const t = result ? trialOfResult(result, this.settings, epochMetric) : (byIndex.get(p.duplicate_of!) ?? { state: 'running' as const });
      byIndex.set(p.index, t);
      return { index: p.index, params: p.params, ...t };
    });
  }

  /** The next proposal's run folder, or undefined when the study has made its count (or stopped, or lost its lock). Serialised. */
  next(): Promise<string | undefined> {
    const run = this.chain.then(() => this.propose());
    this.chain = run.catch(() => undefined);
    return run;
  }

  /** Stops proposing: appended once, so a continued study stops too. */
  stop(reason: string, best?: StopEntry['best']): void {
    if (this.stopped || !this.lock.stillHeld()) return;
    this.stopped = { type: 'stop', reason, ...(best ? { best } : {}), time: new Date().toISOString() };
    appendJournal(this.dir, this.stopped);
    this.entries.push(this.stopped);
  }

  private propose(): string | undefined {
    for (;;) {
      const made = this.proposals();
      if (this.stopped || made.length >= this.settings.count || !this.lock.stillHeld()) return undefined;
      const core = nextProposal(this.settings, this.known(), made.length);
      const point = pointOf(this.plan.written, this.plan.file, core.params, core.index);
      const original = made.find((p) => p.key === point.key);
      const entry: ProposalEntry = {
        type: 'proposal',
        ...core,
        dir: original?.dir ?? runDirName(point),
        key: point.key,
        name: point.name,
        uid: original?.uid ?? randomUUID(),
        ...(original ? { duplicate_of: original.duplicate_of ?? original.index } : {}),
        time: new Date().toISOString(),
      };
      appendJournal(this.dir, entry);
      this.entries.push(entry);
      if (original) continue; // the same config again: its result is known (or will be), no second folder
      this.materialize(entry);
      return join(this.dir, entry.dir);
    }
  }

  /** Writes (or completes) a proposal's run folder and its entry in index.json. */
  private materialize(p: ProposalEntry): void {
    const point = pointOf(this.plan.written, this.plan.file, p.params, p.index);
    materializePoint(this.runsDir, {
      experiment: this.index.experiment,
      sweep: this.index.sweep,
      sweepUid: this.index.uid,
      file: this.index.file,
      experimentText: readFileBounded(sweepPath(this.dir, 'experiment'), MAX_EXPERIMENT_BYTES, 'resolved experiment').toString('utf8'),
      entry: { index: p.index, key: p.key, name: p.name, params: p.params, dir: p.dir },
      uid: p.uid,
      configText: configText(point.config),
    });
  }

  release(): void {
    this.lock.release();
  }
}
