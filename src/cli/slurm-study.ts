/**
 * `exp run FILE --launcher slurm` with sweep.tpe: this process proposes the study's points and
 * follows their Slurm jobs to the study's end (exec/study-slurm.ts), with sweep.budget applied
 * as locally. Exit status: 0 when every point completed (or was pruned, or the budget stopped
 * the study), 1 when one failed, 130 when a job was cancelled (exp cancel) or this process was
 * stopped; running the same command again continues the study.
 */
import { displayPath, table } from './report.js';
import { EXIT, cwdOf, type Io } from './io.js';
import { userConfigLine } from './user-config.js';
import { sweepBudget, stopLine } from './run-budget.js';
import { rankingOf } from '../config/metric.js';
import { runStudyOnSlurm } from '../exec/study-slurm.js';
import type { Study } from '../exec/study-driver.js';
import type { Plan } from '../sweep/plan.js';

export interface SlurmStudyFlags {
  workers?: number | undefined;
  retryFailed: boolean;
}

/** Runs the study on Slurm and reports its end; the caller holds (and releases) the study's lock. */
export async function runStudyOnSlurmCli(plan: Plan, study: Study, flags: SlurmStudyFlags, io: Io): Promise<number> {
  const shown = displayPath(study.dir, cwdOf(io));
  const again = `exp run ${displayPath(plan.file, cwdOf(io))} --launcher slurm (with the same options)`;
  // One at a time unless asked, as a local study: TPE learns most from each result, and --workers N trades that for speed.
  const workers = flags.workers ?? 1;
  const budget = sweepBudget(plan, study.dir, () => study.dirs(), rankingOf(plan.experiment.sweep?.metric));
  io.stdout.write(
    `Each proposal is its own Slurm job, up to ${workers} at once (--workers N); this exp run proposes and follows them to the study's end (stopped, the same command continues the study)\n`,
  );
  io.stdout.write(userConfigLine(plan, io));
  const end = await runStudyOnSlurm(plan, study, {
    workers,
    retryFailed: flags.retryFailed,
    env: io.env,
    say: (l) => io.stdout.write(`${l}\n`),
    ...(budget ? { mayStart: (s: readonly string[]) => budget.mayStart(s) } : {}),
  });
  const stopped = budget?.stopped();
  if (stopped) study.stop(stopped.reason, stopped.best ? { dir: stopped.best.run, value: stopped.best.value } : undefined);
  io.stdout.write(`\n${table(['run', 'status', 'slurm task', 'slurm'], end.rows)}`);
  if (stopped) io.stdout.write(stopLine(stopped));
  if (end.end === 'cancelled') {
    io.stdout.write(`A job of the study was cancelled: its points stopped with their positions saved. Resume with: ${again}\n`);
    return EXIT.interrupted;
  }
  if (end.end === 'interrupted') {
    io.stdout.write(`The study's jobs go on in Slurm (exp status ${shown}; exp cancel ${shown} stops them). Continue the study with: ${again}\n`);
    return EXIT.interrupted;
  }
  const failed = end.rows.filter((r) => r[1] === 'failed' || end.failed.includes(r[0]!)).length;
  if (failed > 0) io.stdout.write(`${failed} point${failed === 1 ? '' : 's'} failed (${again} and --retry-failed runs them again)\n`);
  return failed > 0 ? EXIT.failed : EXIT.ok;
}
