/**
 * The study journal of an adaptive sweep (study.jsonl in the sweep folder): append-only, one
 * JSON line per entry, each flushed to disk before the proposal it records becomes a run
 * folder. A line cut short by a crash mid-append was never committed: it is cut off before the
 * next append. A damaged line before the last one is a coded error (the journal cannot be
 * trusted past it, and guessing would repeat or lose proposals).
 */
import { closeSync, existsSync, fsyncSync, mkdirSync, openSync, truncateSync } from 'node:fs';
import { basename, dirname } from 'node:path';
import { StoreError } from '../errors.js';
import { appendText, readFileBounded } from '../util/fsx.js';
import type { ProposalCore, StudySettings } from '../search/study.js';
import { sweepPath } from './layout.js';

/** The study's settings, written once as the journal's first line. */
export interface StudyHeader {
  type: 'study';
  version: 1;
  sampler: 'tpe';
  settings: StudySettings;
  created: string;
}

/** A proposal, and the run folder it became (named before the folder is written). */
export interface ProposalEntry extends ProposalCore {
  type: 'proposal';
  dir: string;
  key: string;
  name: string;
  uid: string;
  /** Set when the proposal's config equals an earlier proposal's: no new folder, the earlier one's result counts. */
  duplicate_of?: number;
  time: string;
}

/** The study stopped proposing before `count` (a budget): why. */
export interface StopEntry {
  type: 'stop';
  reason: string;
  /** The best point so far when it stopped, by the ranking metric. */
  best?: { dir: string; value: number };
  time: string;
}

export type JournalEntry = StudyHeader | ProposalEntry | StopEntry;

const MAX_JOURNAL_BYTES = 64 << 20;

export const studyJournalPath = (sweepDir: string): string => sweepPath(sweepDir, 'study');

/** The journal's entries; [] when there is none yet. */
export function readJournal(sweepDir: string): JournalEntry[] {
  const path = studyJournalPath(sweepDir);
  if (!existsSync(path)) return [];
  const text = readFileBounded(path, MAX_JOURNAL_BYTES, 'study journal').toString('utf8');
  const lines = text.split('\n');
  const complete = text.endsWith('\n');
  const out: JournalEntry[] = [];
  lines.forEach((line, i) => {
    if (!line.trim()) return;
    let e: JournalEntry | undefined;
    try {
      e = JSON.parse(line) as JournalEntry;
    } catch {
      e = undefined;
    }
    const ok = e !== undefined && typeof e === 'object' && e !== null && ['study', 'proposal', 'stop'].includes(e.type);
    if (ok) out.push(e!);
    else if (!(i === lines.length - 1 && !complete))
      throw new StoreError({
        code: 'RUN_FILE_CORRUPT',
        message: `study journal ${path} line ${i + 1} is damaged: it is not a journal entry`,
        file: path,
        line: i + 1,
        fix: 'restore the file from a backup; exp will not guess the proposals it recorded',
        exit: 'failed',
      });
  });
  return out;
}

/** Appends an entry and flushes it, first cutting off a torn last line. */
export function appendJournal(sweepDir: string, entry: JournalEntry): void {
  const path = studyJournalPath(sweepDir);
  mkdirSync(dirname(path), { recursive: true });
  if (existsSync(path)) {
    const text = readFileBounded(path, MAX_JOURNAL_BYTES, 'study journal').toString('utf8');
    if (text.length > 0 && !text.endsWith('\n')) truncateSync(path, Buffer.byteLength(text.slice(0, text.lastIndexOf('\n') + 1)));
  }
  appendText(path, `${JSON.stringify(entry)}\n`);
  const fd = openSync(path, 'r+');
  try {
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
}

/** The proposal a run folder of an adaptive sweep came from (undefined outside one). */
export function proposalOf(runDir: string): ProposalEntry | undefined {
  const name = basename(runDir);
  return readJournal(dirname(runDir)).find((e): e is ProposalEntry => e.type === 'proposal' && e.dir === name && e.duplicate_of === undefined);
}
