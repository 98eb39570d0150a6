import { basename, resolve } from 'node:path';
import { defineCommand } from './command.js';
import { EXIT, cwdOf } from './io.js';
import { displayPath, table } from './report.js';
import { GPUS_FLAG, LAUNCHER_FLAG, POINTS_AT_ONCE_FLAG, QUEUE_FLAG, RUNS_DIR_FLAG, SET_FLAG, parseGpus, runsDirOf } from './flags.js';
import { syncAfterRun } from './sync.js';
import { planExperiment } from '../sweep/plan.js';
import { userConfigOf } from './user-config.js';
import { ConfigError } from '../config/problem.js';
import { UsageError } from '../errors.js';
import { preflight } from '../exec/preflight.js';
import { runFolders, type FolderResult } from '../exec/local.js';
import { SweepDisplay } from '../exec/display.js';
import { MedianPruner, StoreCurves, type EarlyStopRule, type SweepPruner } from '../exec/prune.js';
import { AshaPruner, schedulerMetric } from '../exec/asha-pruner.js';
import { readSweepIndex, writePlan } from '../store/sweep.js';
import { Study, studySettings } from '../exec/study-driver.js';
import { sweepBudget, stopLine } from './run-budget.js';
import { RunFolder } from '../store/folder.js';
import { pointDir } from '../store/layout.js';
import { epochMetricOf, metricMode, rankingOf, type Ranking } from '../config/metric.js';
import type { Plan } from '../sweep/plan.js';
import type { SweepIndex } from '../store/types.js';
import type { Io } from './io.js';

/** The exit status of a sweep: 130 when a point was stopped, 1 when one failed, else 0. */
export function sweepExit(results: readonly FolderResult[]): number {
  if (results.some((r) => r.status === 'killed')) return EXIT.interrupted;
  return results.some((r) => r.status === 'failed') ? EXIT.failed : EXIT.ok;
}

export const runCommand = defineCommand({
  name: 'run',
  summary: 'Plan the experiment, write one folder per sweep point, and train each point that has not finished.',
  usage:
    'run FILE [--set path=value ...] [--workers N] [--gpus 0,1] [--runs-dir DIR] [--sweep NAME] [--dry-run] [--retry-failed] [--force] [--max-failures N] [--queue URL [--detach] | --launcher slurm [--wait]]',
  details: [
    'Before writing anything, checks what every point needs (data, weights, backend) and reports all problems at once.',
    'Running the same file again resumes its sweep: finished points are skipped, interrupted ones continue from their last',
    'checkpoint (which may be inside an epoch); failed ones run again only with --retry-failed. Ctrl-C stops every running',
    'point at its next batch (a second Ctrl-C at once); run the same command to continue.',
    'sweep.tpe with --launcher slurm: this process proposes each point as its own Slurm job (up to --workers N at once, default 1)',
    'and follows the study to its end; stopped or killed, the same command continues it (jobs still in Slurm are followed, not resubmitted).',
    'Exit status: 0 when every point completed (or was pruned or skipped), 1 when one failed, 2 for invalid input, 130 when stopped.',
  ].join('\n'),
  positionals: { name: 'FILE', min: 1, max: 1 },
  flags: {
    set: SET_FLAG,
    workers: POINTS_AT_ONCE_FLAG,
    gpus: GPUS_FLAG,
    'runs-dir': RUNS_DIR_FLAG,
    sweep: { type: 'string', arg: 'NAME', description: 'Name of the sweep folder (default: a hash of the resolved experiment).' },
    'dry-run': { type: 'boolean', description: 'Write the run folders (config.yaml, point.json each) but train nothing.' },
    force: { type: 'boolean', description: 'Train points that already ended again, from scratch.' },
    'retry-failed': { type: 'boolean', description: 'Also run points whose last attempt failed (from their last checkpoint).' },
    'only-failed': { type: 'boolean', description: 'Same as --retry-failed (kept for old scripts).' },
    'max-failures': { type: 'int', arg: 'N', min: 1, description: 'Start no new point after N failures.' },
    queue: { ...QUEUE_FLAG, description: 'Send the points to a queue (redis://HOST:PORT[/DB]) for `exp worker`s instead of training here.' },
    detach: { type: 'boolean', description: 'With --queue: return once the points are queued instead of following them.' },
    launcher: LAUNCHER_FLAG,
    wait: {
      type: 'boolean',
      description:
        'With --launcher slurm: follow the job array until every task has ended, instead of returning at once (a sweep.tpe study is always followed).',
    },
  },
  async run(files, flags, io) {
    const cwd = cwdOf(io);
    const result = planExperiment(resolve(cwdOf(io), files[0]!), { set: flags.set, user: userConfigOf(io) });
    if (!result.plan) throw new ConfigError({ problems: result.problems, texts: result.texts });
    const plan = result.plan;
    const missing = await preflight(plan, result.sources, io.env);
    if (missing.length > 0) throw new ConfigError({ problems: missing, texts: result.texts });
    const gpus = parseGpus(flags.gpus);
    // An adaptive study writes its folders as it proposes them (exec/study-driver.ts); every other sweep is written whole here.
    const study = studySettings(plan) ? await Study.open(runsDirOf(flags['runs-dir'], io), plan, flags.sweep) : undefined;
    const { dir, index } = study ? { dir: study.dir, index: readSweepIndex(study.dir)! } : writePlan(runsDirOf(flags['runs-dir'], io), plan, flags.sweep);
    io.stdout.write(study ? studyLine(study, cwd) : `Planned ${index.points.length} run${index.points.length === 1 ? '' : 's'} in ${displayPath(dir, cwd)}\n`);
    const dirs = index.points.map((p) => pointDir(dir, p));
    if (flags['dry-run']) {
      for (const p of index.points) io.stdout.write(`  ${p.dir}\n`);
      return EXIT.ok;
    }
    if (flags.launcher === 'slurm') {
      if (flags.queue || flags.force || flags.gpus) {
        study?.release();
        throw new UsageError({
          code: 'USAGE',
          message: '--launcher slurm takes neither --queue, --force nor --gpus',
          fix: 'ask Slurm for GPUs with --set launcher.slurm.gpus_per_task=1',
        });
      }
      const slurmFlags = { workers: flags.workers, retryFailed: flags['retry-failed'] || flags['only-failed'] };
      // An adaptive study proposes points as results come in: this process follows it to its end (cli/slurm-study.ts); any other sweep is one job array.
      if (study) {
        try {
          return await (await import('./slurm-study.js')).runStudyOnSlurmCli(plan, study, slurmFlags, io);
        } finally {
          study.release();
        }
      }
      const { runOnSlurm } = await import('./slurm.js');
      return runOnSlurm(plan, dir, index, { ...slurmFlags, wait: flags.wait }, io);
    }
    if (flags.queue) {
      try {
        return await runOnQueue(flags.queue, plan, dir, index, flags.detach, io, study);
      } finally {
        study?.release();
      }
    }
    const workers = flags.workers ?? (gpus?.length || 1);
    const monitor = plan.experiment.checkpoint.monitor;
    // "Best so far" follows the sweep's ranking (sweep.metric) by its per-epoch value, as exp compare will rank the points.
    const ranking = rankingOf(plan.experiment.sweep?.metric);
    const live = epochMetricOf(ranking);
    const display = new SweepDisplay(io.stdout, {
      mode: workers === 1 ? 'ends' : io.stdout.isTTY ? 'live' : 'lines',
      metric: live ?? monitor,
      direction: live ? ranking.mode : metricMode(monitor, plan.experiment.checkpoint.mode),
    });
    const rule = plan.experiment.sweep?.early_stop;
    const budget = sweepBudget(plan, dir, () => (study ? study.dirs() : dirs), ranking);
    const results = await runFolders(dirs, {
      workers,
      gpus,
      force: flags.force,
      retryFailed: flags['retry-failed'] || flags['only-failed'],
      maxFailures: flags['max-failures'],
      env: io.env,
      display,
      childOutput: workers === 1 ? 'inherit' : 'quiet',
      metric: live ?? monitor,
      ...(rule ? { pruner: localPruner(rule, plan, dir, () => (study ? readSweepIndex(dir)! : index), ranking) } : {}),
      ...(study ? { next: () => study.next() } : {}),
      // A study that has made its count has nothing left to start: its budget is not what ends it.
      ...(budget ? { mayStart: (s: readonly string[]) => (study && study.proposals().length >= study.settings.count ? undefined : budget.mayStart(s)) } : {}),
    });
    const stopped = budget?.stopped();
    if (stopped) study?.stop(stopped.reason, stopped.best ? { dir: stopped.best.run, value: stopped.best.value } : undefined);
    study?.release();
    await syncAfterRun(study ? study.dirs() : dirs, dir, io);
    io.stdout.write(endReport(results, dir, cwd));
    if (stopped) io.stdout.write(stopLine(stopped));
    return sweepExit(results);
  },
});

/** The first line of an adaptive sweep's run: how far the study is. */
function studyLine(study: Study, cwd: string): string {
  const made = study.proposals().length;
  const { count, startup } = study.settings;
  return `TPE study of ${count} point${count === 1 ? '' : 's'} in ${displayPath(study.dir, cwd)}: ${made === 0 ? 'starting' : `${made} proposed so far, continuing`} (${Math.min(startup, count)} random start-up points, then TPE proposes each from the results known then)\n`;
}

/** The sweep's early-termination rule over its run folders: median stopping, or ASHA/Hyperband (their brackets' folders apart). */
function localPruner(rule: EarlyStopRule, plan: Plan, sweepDir: string, indexNow: () => SweepIndex, ranking: Ranking): SweepPruner {
  const monitor = plan.experiment.checkpoint.monitor;
  const index = indexNow();
  if (rule.rule !== 'asha' && rule.rule !== 'hyperband')
    return new MedianPruner(rule, monitor, new StoreCurves(index.points.map((p) => pointDir(sweepDir, p))));
  // An adaptive study's points come as it proposes them: the index is read again for each decision.
  const indexOf = (point: string): number | undefined => indexNow().points.find((p) => p.dir === point)?.index;
  const maxEpochs = Math.max(...plan.points.map((p) => p.config.training.epochs));
  const pruner: AshaPruner = new AshaPruner({
    rule,
    ...schedulerMetric(rule, ranking, monitor),
    study: index.sweep,
    maxEpochs,
    indexOf,
    curvesOf: (bracket) =>
      new StoreCurves(
        indexNow()
          .points.filter((p) => pruner.bracketOf(p.dir) === bracket)
          .map((p) => pointDir(sweepDir, p)),
      ),
  });
  return pruner;
}

/**
 * The last lines of `exp run`: each point's status with its F-beta at the configured threshold
 * and with thresholds tuned per tag (final_val_fbeta and final_val_fbeta_tuned in MLflow), then
 * where the results are, so that a first run says what it made and where to look.
 */
function endReport(results: readonly FolderResult[], sweepDir: string, cwd: string): string {
  const f = (v: number | undefined): string => (v === undefined ? '' : v.toFixed(4));
  const rows = results.map((r) => {
    const final = new RunFolder(r.dir).summary()?.final ?? undefined;
    return [basename(r.dir), r.status, r.seconds ? r.seconds.toFixed(1) : '', f(final?.val_fbeta), f(final?.val_fbeta_tuned), r.note ?? ''];
  });
  const lines = [`\n${table(['run', 'status', 'seconds', 'val_fbeta', 'val_fbeta_tuned', 'note'], rows)}`];
  const done = results.filter((r) => new RunFolder(r.dir).has('summary'));
  if (done.length === 1) {
    const where = displayPath(done[0]!.dir, cwd);
    lines.push(`Results in ${where}/: summary.json (every number), curves.png (the learning curves), metrics.jsonl (per epoch), train.log`);
  } else if (done.length > 1) {
    lines.push(
      `Results in ${displayPath(sweepDir, cwd)}/<run>/: summary.json, curves.png, metrics.jsonl, train.log; rank them with: exp compare ${displayPath(sweepDir, cwd)}`,
    );
  }
  return `${lines.join('\n')}\n`;
}

/** `exp run --queue`: enqueue the points, then follow them (or not, with --detach). */
async function runOnQueue(url: string, plan: Plan, sweepDir: string, index: SweepIndex, detach: boolean, io: Io, study?: Study): Promise<number> {
  // Loaded here: BullMQ and ioredis are only needed with --queue.
  const { checkReachable, openQueue, parseQueueUrl } = await import('../exec/queue.js');
  const { followSweep, submitSweep } = await import('../exec/submit.js');
  const conn = parseQueueUrl(url);
  await checkReachable(conn);
  const queue = openQueue(conn);
  try {
    if (study) {
      const { runStudyOnQueue } = await import('../exec/study-queue.js');
      const rows = await runStudyOnQueue(queue, plan, study, { say: (l) => io.stdout.write(`${l}\n`), env: io.env, detach });
      const failed = rows.filter((r) => r.state === 'failed').length;
      io.stdout.write(
        `\n${detach ? `${rows.length} queued; the study proposes more only while exp run follows it (run it again to continue)` : `${rows.length - failed} completed, ${failed} failed`}\n`,
      );
      return failed > 0 ? EXIT.failed : EXIT.ok;
    }
    const s = await submitSweep(queue, plan, sweepDir, index, io.env);
    io.stdout.write(
      `Queued ${s.added.length} point${s.added.length === 1 ? '' : 's'} on ${conn.shown}${s.existing.length ? ` (${s.existing.length} already queued)` : ''}${s.finishedHere.length ? `; ${s.finishedHere.length} finished here before, not queued` : ''}\n`,
    );
    if (detach) {
      io.stdout.write(
        `Follow them with: exp queue status --queue ${conn.shown} --sweep ${index.sweep}\nStart workers with: exp worker --queue ${conn.shown}\n`,
      );
      return EXIT.ok;
    }
    const rows = await followSweep(queue, index.sweep, (l) => io.stdout.write(`${l}\n`), {
      expected: [...s.added, ...s.existing],
      requeue: async (ids) => {
        const again = await submitSweep(queue, plan, sweepDir, index, io.env, new Set(ids));
        return [...again.added, ...again.existing];
      },
    });
    const failed = rows.filter((r) => r.state === 'failed').length;
    io.stdout.write(
      `\n${rows.length - failed} completed, ${failed} failed${failed ? ` (exp queue retry-failed --queue ${conn.shown} --sweep ${index.sweep} runs them again)` : ''}\n`,
    );
    return failed > 0 ? EXIT.failed : EXIT.ok;
  } finally {
    await queue.close();
  }
}
