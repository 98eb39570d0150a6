/**
 * `exp why RUN`: every decision about a run, with its numbers, from the records the sweep
 * keeps: the proposal that made it (an adaptive study's journal: the known results and TPE's
 * split), each rung it passed (its `rung` events), its pruning (run.json's reason), and a
 * budget that stopped the sweep before it started.
 */
import { basename, dirname } from 'node:path';
import { defineCommand } from './command.js';
import { EXIT, cwdOf } from './io.js';
import { JSON_FLAG, RUNS_DIR_FLAG, runsDirOf } from './flags.js';
import { findRunFolder } from '../store/find.js';
import { RunFolder } from '../store/folder.js';
import { proposalOf } from '../store/study.js';
import { readSweepStop } from '../store/sweep-stop.js';
import { readEvents } from '../track/events.js';
import { describeProposal } from '../search/study.js';
import { readJournal } from '../store/study.js';

export interface Decision {
  kind: 'proposal' | 'continued' | 'pruned' | 'ended' | 'budget';
  epoch?: number;
  text: string;
}

/** The decisions about the run in `dir`, in the order they were made. */
export function decisionsOf(dir: string): Decision[] {
  const out: Decision[] = [];
  const proposal = proposalOf(dir);
  if (proposal) {
    const header = readJournal(dirname(dir)).find((e) => e.type === 'study');
    out.push({ kind: 'proposal', text: describeProposal(proposal, header?.type === 'study' ? header.settings.metric : 'value') });
  }
  for (const e of readEvents(dir).events) if (e.type === 'rung') out.push({ kind: 'continued', epoch: e.epoch, text: e.reason });
  const rec = new RunFolder(dir).record();
  if (rec?.status === 'pruned') out.push({ kind: 'pruned', text: rec.reason ?? 'pruned' });
  else if (rec && rec.status !== 'planned' && rec.reason) out.push({ kind: 'ended', text: `${rec.status}: ${rec.reason}` });
  const stop = readSweepStop(dirname(dir));
  if (stop && (!rec || rec.attempts === 0)) out.push({ kind: 'budget', text: `not started: ${stop.reason}` });
  return out;
}

export const whyCommand = defineCommand({
  name: 'why',
  summary: 'Every decision about a run, with its numbers: its proposal, each rung it passed or was pruned at, a budget stop.',
  usage: 'why RUN [--runs-dir DIR] [--json]',
  details: 'RUN is a run folder or a run key (prefix). --json prints {run, status, decisions: [{kind, epoch?, text}]}.',
  positionals: { name: 'RUN', min: 1, max: 1 },
  flags: { 'runs-dir': RUNS_DIR_FLAG, json: JSON_FLAG },
  async run(args, flags, io) {
    const dir = findRunFolder(args[0]!, cwdOf(io), runsDirOf(flags['runs-dir'], io));
    const decisions = decisionsOf(dir);
    const status = new RunFolder(dir).record()?.status ?? 'planned';
    if (flags.json) {
      io.stdout.write(`${JSON.stringify({ run: basename(dir), status, decisions }, null, 2)}\n`);
      return EXIT.ok;
    }
    io.stdout.write(`${basename(dir)}: ${status}\n`);
    if (decisions.length === 0)
      io.stdout.write('  no decision recorded: it is not a point of an adaptive sweep, and no scheduler or budget decided about it\n');
    for (const d of decisions) io.stdout.write(`  ${d.kind}${d.epoch === undefined ? '' : ` (epoch ${d.epoch})`}: ${d.text}\n`);
    return EXIT.ok;
  },
});
