/**
 * The run's tracking log, `events.jsonl`: training appends events and never talks to a
 * tracking server. Sinks (MLflow) replay the log from their own cursor, so sending live and
 * `exp sync` later are one code path, and a server outage loses nothing.
 *
 * Every line is one JSON object ending in a checksum of the rest of the line
 * (`...,"sum":"<8 hex>"}`), so a line damaged on disk is found, not skipped in silence. A torn
 * last line (a crash in the middle of an append) was never recorded: it is cut off before the
 * next append. A damaged line anywhere else stops the sink for that run until the log is
 * rebuilt from the run's other files (`exp sync --rebuild-events`).
 *
 * Events are made by their builders (event-builders.ts) and written only here: appended by
 * EventLog (the trainer through RunOutputs, exp tag), or the whole log by rewriteEvents (a
 * rebuild).
 */
import { closeSync, existsSync, fsyncSync, openSync, readFileSync, statSync, truncateSync } from 'node:fs';
import { createHash } from 'node:crypto';
import { runPath } from '../store/layout.js';
import { appendText, readFileBounded, writeFileAtomic } from '../util/fsx.js';

/** A run's log is a few kB per epoch; a bigger file is not one (and is never read whole). */
const MAX_EVENTS_BYTES = 512 * 2 ** 20;
import type { RunStatus } from '../store/types.js';

export type EndStatus = Exclude<RunStatus, 'planned' | 'running'>;

export type TrackEvent =
  | {
      type: 'run_started';
      key: string;
      name: string;
      experiment: string;
      sweep: string;
      params: Record<string, unknown>;
      tags: Record<string, string>;
      resumed: boolean;
    }
  | { type: 'epoch'; epoch: number; metrics: Record<string, number> }
  /** Metrics of the run as a whole (best_*, final_*, baseline), logged once at its end. */
  | { type: 'result'; metrics: Record<string, number> }
  /** Resource use while training (MLflow system metrics): step is the sample's number. */
  | { type: 'system'; step: number; metrics: Record<string, number> }
  | { type: 'dataset'; name: string; digest: string; source: string; split_hash: string; profile: Record<string, unknown> }
  | { type: 'artifact'; path: string }
  /**
   * A checkpoint staged for another worker to resume from (queued runs): `path` is a folder of
   * hard links made right after the save, uploaded whole under takeover/<label>/ before the
   * takeover/LATEST pointer names it, so a reader never sees half of one.
   */
  | { type: 'checkpoint'; path: string; label: string }
  /**
   * Log the run's best checkpoint as an MLflow model (an MLflow 3 logged model named 'model',
   * source run = this run): built from the run folder when sent, so the folder keeps no copy.
   */
  | { type: 'model'; name: string; step: number }
  /** Tags set on the run after it trained (exp tag). */
  | { type: 'tags'; tags: Record<string, string> }
  /** The run ended: the checkpoints uploaded for a takeover are not needed any more. */
  | { type: 'checkpoint_done' }
  /** A sweep scheduler's (ASHA's) decision to let the run go on past a rung, with its numbers; the sinks send nothing for it (run.json and events.jsonl keep it). */
  | { type: 'rung'; epoch: number; decision: 'continued'; reason: string }
  | { type: 'run_ended'; status: EndStatus; reason: string; summary?: Record<string, unknown> };

export type LoggedEvent = TrackEvent & { seq: number; time: number };

export const eventsPath = (runDir: string): string => runPath(runDir, 'events');

const checksum = (text: string): string => createHash('sha256').update(text).digest('hex').slice(0, 8);

/** One log line: the event's JSON with its checksum as the last key. */
export function eventLine(e: LoggedEvent): string {
  const body = JSON.stringify(e);
  return `${body.slice(0, -1)},"sum":"${checksum(body)}"}`;
}

const SUMMED = /^(.*),"sum":"([0-9a-f]{8})"\}$/;

/** A line of the log that is not a whole, intact event. */
export interface DamagedLine {
  line: number;
  reason: string;
}

export interface EventLogRead {
  events: LoggedEvent[];
  /** Damaged lines before the last one: the log cannot be trusted past the first. */
  damaged: DamagedLine[];
  /** The last line is incomplete (a crash mid-append); it is not an event. */
  torn: boolean;
}

function parseLine(text: string): LoggedEvent | string {
  const m = SUMMED.exec(text);
  const body = m ? `${m[1]}}` : text;
  if (m && checksum(body) !== m[2]) return 'its checksum does not match (the line was changed or damaged on disk)';
  let e: LoggedEvent;
  try {
    e = JSON.parse(body) as LoggedEvent;
  } catch {
    return 'it is not valid JSON';
  }
  if (typeof e !== 'object' || e === null || typeof e.seq !== 'number' || typeof e.type !== 'string') return 'it is not an event (no seq or type)';
  return e; // a line without "sum" was written by an older exp: accepted as it is
}

/** Reads the log: its intact events, and the lines that are not. */
export function readEvents(runDir: string): EventLogRead {
  const path = eventsPath(runDir);
  if (!existsSync(path)) return { events: [], damaged: [], torn: false };
  let text: string;
  try {
    text = readFileBounded(path, MAX_EVENTS_BYTES, 'tracking log').toString('utf8');
  } catch (e) {
    return { events: [], damaged: [{ line: 0, reason: (e as Error).message }], torn: false };
  }
  const lines = text.split('\n');
  const complete = text.endsWith('\n') || text === '';
  const events: LoggedEvent[] = [];
  const damaged: DamagedLine[] = [];
  let torn = false;
  lines.forEach((l, i) => {
    if (!l.trim()) return;
    const r = parseLine(l);
    if (typeof r !== 'string') {
      events.push(r);
      return;
    }
    if (i === lines.length - 1 && !complete) torn = true;
    else damaged.push({ line: i + 1, reason: r });
  });
  return { events, damaged, torn };
}

/** Appends events with increasing sequence numbers, flushed to disk before returning. */
export class EventLog {
  private seq: number;
  constructor(private readonly runDir: string) {
    const read = readEvents(runDir);
    this.seq = read.events.reduce((m, e) => Math.max(m, e.seq), 0);
    if (read.torn) cutTornTail(eventsPath(runDir));
  }

  append(event: TrackEvent, time = Date.now()): LoggedEvent {
    const logged = { ...event, seq: ++this.seq, time } as LoggedEvent;
    appendDurably(eventsPath(this.runDir), eventLine(logged) + '\n');
    return logged;
  }
}

/**
 * Replaces the whole log with `events` (numbered from 1, stamped now): only for a rebuild from
 * the run's other files; training and exp tag append through EventLog. Returns the count.
 */
export function rewriteEvents(runDir: string, events: readonly TrackEvent[], time = Date.now()): number {
  const logged = events.map((e, i): LoggedEvent => ({ ...e, seq: i + 1, time }) as LoggedEvent);
  writeFileAtomic(eventsPath(runDir), logged.map((e) => eventLine(e) + '\n').join(''));
  return logged.length;
}

/** Appends and fsyncs, so an event that returned is on disk. */
export function appendDurably(path: string, text: string): void {
  appendText(path, text);
  const fd = openSync(path, 'r+');
  try {
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
}

/** Cuts the file back to its last complete line. */
function cutTornTail(path: string): void {
  const text = readFileSync(path, 'utf8');
  const keep = text.lastIndexOf('\n') + 1;
  if (keep < Buffer.byteLength(text) && statSync(path).size > 0) truncateSync(path, Buffer.byteLength(text.slice(0, keep)));
}
