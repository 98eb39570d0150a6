/**
 * The run's tracking log, `events.jsonl`: training appends events and never talks to a
 * tracking server. Sinks (MLflow) replay the log from their own cursor, so sending live and
 * `exp sync` later are one code path, and a server outage loses nothing.
 */
import { appendFileSync, existsSync, readFileSync, openSync, fsyncSync, closeSync } from 'node:fs';
import { join } from 'node:path';

export type TrackEvent =
  | { type: 'run_started'; key: string; name: string; experiment: string; sweep: string; params: Record<string, unknown>; tags: Record<string, string>; resumed: boolean }
  | { type: 'epoch'; epoch: number; metrics: Record<string, number> }
  | { type: 'artifact'; path: string }
  | { type: 'run_ended'; status: 'completed' | 'failed' | 'killed'; reason: string; summary?: Record<string, unknown> };

export type LoggedEvent = TrackEvent & { seq: number; time: number };

export const eventsPath = (runDir: string): string => join(runDir, 'events.jsonl');

export function readEvents(runDir: string): LoggedEvent[] {
  const path = eventsPath(runDir);
  if (!existsSync(path)) return [];
  const out: LoggedEvent[] = [];
  for (const line of readFileSync(path, 'utf8').split('\n')) {
    if (!line.trim()) continue;
    try { out.push(JSON.parse(line) as LoggedEvent); } catch { /* a torn last line after a crash: ignore it */ }
  }
  return out;
}

/** Appends events with increasing sequence numbers, flushed to disk before returning. */
export class EventLog {
  private seq: number;
  constructor(private readonly runDir: string) {
    this.seq = readEvents(runDir).reduce((m, e) => Math.max(m, e.seq), 0);
    // After a crash mid-write the last line may be torn; end it, so the next event is a line of its own.
    const path = eventsPath(runDir);
    if (existsSync(path)) {
      const text = readFileSync(path, 'utf8');
      if (text.length > 0 && !text.endsWith('\n')) appendFileSync(path, '\n');
    }
  }

  append(event: TrackEvent, time = Date.now()): LoggedEvent {
    const logged = { ...event, seq: ++this.seq, time } as LoggedEvent;
    const path = eventsPath(this.runDir);
    appendFileSync(path, JSON.stringify(logged) + '\n');
    const fd = openSync(path, 'r+');
    try { fsyncSync(fd); } finally { closeSync(fd); }
    return logged;
  }
}
