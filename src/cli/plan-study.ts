/**
 * What `exp plan` can say about an adaptive study (sweep.tpe) before it runs: its start-up
 * points (random draws fixed by the seed), the proposals its journal holds when the study has
 * been run here before, and that the rest is adaptive (made from results not known yet).
 */
import { defaultSweepId } from '../store/sweep.js';
import { sweepDirPath } from '../store/layout.js';
import { readJournal, type ProposalEntry } from '../store/study.js';
import type { Plan } from '../sweep/plan.js';
import { pointOf, type SweepPoint } from '../sweep/expand.js';
import { startupParams } from '../search/study.js';
import { formatValue, table } from './report.js';

/** The study's start-up points: random draws fixed by its seed and their index alone. */
export function startupPoints(plan: Plan): SweepPoint[] {
  const tpe = plan.experiment.sweep!.tpe!;
  return startupParams({ space: tpe.params, seed: tpe.seed ?? 0, startup: tpe.startup ?? 10, count: tpe.count }).map((params, i) =>
    pointOf(plan.written, plan.file, params, i),
  );
}

export function studyPlanNote(plan: Plan, runsDir: string): string {
  const tpe = plan.experiment.sweep!.tpe!;
  const startup = Math.min(tpe.startup ?? 10, tpe.count);
  const lines = [
    `\nA TPE study of ${tpe.count} point${tpe.count === 1 ? '' : 's'}: the ${startup} random start-up points above, then the rest is adaptive:`,
    `TPE proposes each point from the results known when a worker is free for it (seed ${tpe.seed ?? 0}).`,
  ];
  const made = readJournal(sweepDirPath(runsDir, plan.experiment.name, defaultSweepId(plan))).filter((e): e is ProposalEntry => e.type === 'proposal');
  if (made.length > 0) {
    const paths = Object.keys(tpe.params);
    lines.push(`\nProposals made so far (${made.length} of ${tpe.count}):\n`);
    lines.push(
      table(
        ['#', 'sampler', 'run', ...paths],
        made.map((p) => [String(p.index + 1), p.sampler, p.dir, ...paths.map((k) => formatValue(p.params[k]))]),
      ).trimEnd(),
    );
  }
  return `${lines.join('\n')}\n`;
}
