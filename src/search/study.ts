/**
 * An adaptive study (sweep.tpe) as a pure function: proposal `index` is made from the study's
 * settings, its index and the trials known when it is made, nothing else. The journal records
 * exactly those inputs with each proposal (src/store/study.ts), so a study continued after a
 * crash proposes what it would have proposed uninterrupted, and `exp why` can show them.
 */
import { propose, split, TPE_DEFAULTS, type Mode, type Space, type Trial } from './tpe.js';

export interface StudySettings {
  space: Space;
  /** Proposals in all, the start-up ones included. */
  count: number;
  seed: number;
  startup: number;
  /** The ranking metric (sweep.metric) and its direction: what TPE's split orders by. */
  metric: string;
  mode: Mode;
}

/** A trial as a proposal saw it: its proposal index, state and value then. */
export interface KnownTrial extends Trial {
  index: number;
}

/** What a proposal is, and what it was made from. */
export interface ProposalCore {
  index: number;
  params: Record<string, unknown>;
  /** random: a start-up point (fewer than `startup` trials had ended); tpe: the best of TPE's candidates. */
  sampler: 'random' | 'tpe';
  /** The proposal drew from the stream of (seed, index): no other sampler state exists. */
  seed: number;
  known: KnownTrial[];
  /** TPE's split of the known trials (their indices): the good ("below") and the others. */
  below?: number[];
  above?: number[];
}

/** Trials that have ended with a result TPE can use (complete with a finite value, or pruned). */
export const endedCount = (known: readonly Trial[]): number =>
  known.filter((t) => (t.state === 'complete' && Number.isFinite(t.value)) || t.state === 'pruned').length;

/** Proposal `index` given the trials known now (any order; they are taken in index order). */
export function nextProposal(s: StudySettings, known: readonly KnownTrial[], index: number): ProposalCore {
  const history = [...known].sort((a, b) => a.index - b.index);
  const params = propose(s.space, history, index, { seed: s.seed, mode: s.mode, startup: s.startup });
  const random = endedCount(history) < (s.startup ?? TPE_DEFAULTS.startup);
  const base: ProposalCore = { index, params, sampler: random ? 'random' : 'tpe', seed: s.seed, known: history };
  if (random) return base;
  const parts = split(history, s.mode);
  return { ...base, below: parts.below.map((i) => history[i]!.index), above: parts.above.map((i) => history[i]!.index) };
}

/** The start-up proposals: random draws that depend on the seed and their index alone (what `exp plan` can show). */
export function startupParams(s: Pick<StudySettings, 'space' | 'seed' | 'startup' | 'count'>): Record<string, unknown>[] {
  return Array.from({ length: Math.min(s.startup, s.count) }, (_, i) => propose(s.space, [], i, { seed: s.seed, mode: 'max', startup: s.startup }));
}

/** "proposal 12 (tpe): 11 known (8 ended); good: #3 #7 (val_fbeta 0.81, 0.79); others: 9" */
export function describeProposal(p: ProposalCore, metric: string): string {
  const ended = endedCount(p.known);
  const head = `proposal ${p.index + 1} (${p.sampler === 'random' ? 'random start-up point' : 'TPE'}): ${p.known.length} earlier point${p.known.length === 1 ? '' : 's'} known, ${ended} ended`;
  if (p.sampler === 'random') return head;
  const byIndex = new Map(p.known.map((t) => [t.index, t]));
  const fmt = (i: number): string => {
    const t = byIndex.get(i);
    const v = t?.value === undefined ? t?.state : `${metric} ${Number(t.value.toPrecision(4))}${t.state === 'pruned' ? ` (pruned at epoch ${t.step})` : ''}`;
    return `#${i + 1} ${v}`;
  };
  return `${head}; good (l(x)): ${(p.below ?? []).map(fmt).join(', ')}; others (g(x)): ${(p.above ?? []).length}`;
}
