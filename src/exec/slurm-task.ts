/**
 * One array task of a sweep submitted with `exp run --launcher slurm` (`exp slurm-task SWEEP
 * --submission N`, what the batch script execs): SLURM_ARRAY_TASK_ID -> the point's run folder
 * (tasks-N.json), then the same `exp train` child as a local sweep, its output in the task's log.
 *
 * Adaptive sweeps: every task is its own scheduler. ASHA/Hyperband rungs and median stopping
 * decide from the other points' metrics.jsonl in the shared sweep folder, as a local sweep does,
 * so no coordinator job exists to be killed: a requeued task that stopped at a rung asks again
 * when it resumes (the trainer re-asks for a verdict it never got).
 *
 * Signals: SIGTERM (scancel, scontrol requeue, preemption) reaches the child from Slurm too; the
 * task asks it over IPC as well (never a second signal, which would abort it), so it stops within
 * a batch with its position saved. SIGUSR1 (the --signal warning before the time limit): the same,
 * then the task requeues itself, and the next allocation resumes mid-epoch.
 */
import { hostname } from 'node:os';
import { join } from 'node:path';
import { ExpError } from '../errors.js';
import { readSweepIndex, readSweepRanking } from '../store/sweep.js';
import { readTaskMap, type SlurmTaskMap } from '../store/slurm.js';
import { isRunFolder, readRunRecord, runFolderBusy } from '../store/run.js';
import { STALE_MS } from '../store/lock.js';
import { launchPoint, Stopper } from './launch.js';
import { EXIT } from './protocol.js';
import { MedianPruner, StoreCurves, type SweepPruner } from './prune.js';
import { AshaPruner, schedulerMetric } from './asha-pruner.js';
import { slurmClient } from './slurm.js';

export interface TaskOptions {
  sweepDir: string;
  submission: number;
  env: NodeJS.ProcessEnv;
  say: (line: string) => void;
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** The task's run folder: SLURM_ARRAY_TASK_ID looked up in the submission's map. */
function taskFolder(o: TaskOptions, map: SlurmTaskMap): { dir: string; task: string } {
  const task = o.env.SLURM_ARRAY_TASK_ID ?? '';
  if (!/^\d{1,7}$/.test(task))
    throw new ExpError({
      code: 'SLURM_TASK_INVALID',
      message: `exp slurm-task runs inside a Slurm array task (SLURM_ARRAY_TASK_ID is ${task ? `'${task.slice(0, 20)}'` : 'not set'})`,
      fix: 'submit the sweep with exp run FILE --launcher slurm; it writes the batch script that runs this',
    });
  const name = map.tasks[task];
  if (name === undefined)
    throw new ExpError({
      code: 'SLURM_TASK_INVALID',
      message: `array task ${task} is not in submission ${o.submission} of ${o.sweepDir} (its tasks: ${Object.keys(map.tasks).join(',')})`,
      fix: 'submit the sweep again with exp run FILE --launcher slurm',
      exit: 'failed',
    });
  const dir = join(o.sweepDir, name);
  if (!isRunFolder(dir))
    throw new ExpError({
      code: 'SLURM_TASK_INVALID',
      message: `${dir} is not a run folder on ${hostname()}: the runs folder must be on a file system every node shares`,
      file: dir,
      fix: 'put the runs folder (--runs-dir, $EXP_RUNS_DIR) on the shared file system and submit again',
      exit: 'failed',
    });
  return { dir, task };
}

/** The sweep's early-termination rule over the run folders of the shared sweep folder, as a local sweep has it. */
function taskPruner(o: TaskOptions, map: SlurmTaskMap): SweepPruner | undefined {
  const rule = map.early_stop;
  const index = readSweepIndex(o.sweepDir);
  if (!rule || !index) return undefined;
  // An adaptive study (sweep.tpe) adds points while this one trains: its rungs read the index again for each decision.
  const indexNow = (): typeof index => readSweepIndex(o.sweepDir) ?? index;
  const dirsOf = (keep: (p: string) => boolean): string[] =>
    indexNow()
      .points.filter((p) => keep(p.dir))
      .map((p) => join(o.sweepDir, p.dir));
  if (rule.rule !== 'asha' && rule.rule !== 'hyperband') return new MedianPruner(rule, map.monitor, new StoreCurves(dirsOf(() => true)));
  const pruner: AshaPruner = new AshaPruner({
    rule,
    ...schedulerMetric(rule, readSweepRanking(o.sweepDir), map.monitor),
    study: index.sweep,
    maxEpochs: map.max_epochs,
    indexOf: (point) => indexNow().points.find((p) => p.dir === point)?.index,
    curvesOf: (bracket) => new StoreCurves(dirsOf((d) => pruner.bracketOf(d) === bracket)),
  });
  return pruner;
}

/** Waits for a folder another process still holds (the previous allocation's child finishing its batch); false if it stays held. */
async function waitFree(dir: string): Promise<boolean> {
  const deadline = Date.now() + STALE_MS() + 30_000;
  while (runFolderBusy(dir).busy && Date.now() < deadline) await sleep(1000);
  return !runFolderBusy(dir).busy;
}

/** Runs the task; returns the exit status (0 ended or requeued, 1 failed, 75 busy, 130 stopped). */
export async function runSlurmTask(o: TaskOptions): Promise<number> {
  const map = readTaskMap(o.sweepDir, o.submission);
  const { dir, task } = taskFolder(o, map);
  const job = `${o.env.SLURM_ARRAY_JOB_ID ?? o.env.SLURM_JOB_ID ?? '?'}_${task}`;
  const before = readRunRecord(dir)?.status;
  if (before === 'completed' || before === 'pruned') {
    o.say(`${dir}: already ${before}; nothing to train (a finished point is never trained again)`);
    return 0;
  }
  if (!(await waitFree(dir))) {
    o.say(`${dir}: another process trains it (${runFolderBusy(dir).busy ? 'its lock is live' : ''}); leaving it`);
    return EXIT.busy;
  }
  const pruner = taskPruner(o, map);
  const requeue = { asked: false };
  // Not installed: Slurm signals every process of the job, the trainer too, so a relayed SIGINT would be its second
  // signal and abort it. The task asks over IPC instead (asking twice is one request).
  const stopper = new Stopper(() => undefined);
  const onSignal = (sig: NodeJS.Signals): void => {
    if (sig === 'SIGUSR1') requeue.asked = true;
    if (stopper.count++ === 0)
      o.say(`exp slurm-task: ${sig}: the point stops within a batch with its position saved${sig === 'SIGUSR1' ? ', then this task is requeued' : ''}`);
    for (const c of stopper.children) c.stop(`stopped by ${sig} from Slurm (job ${job})`);
  };
  const signals: NodeJS.Signals[] = ['SIGTERM', 'SIGINT', 'SIGUSR1'];
  for (const s of signals) process.on(s, onSignal);
  o.say(`exp slurm-task: job ${job} trains ${dir}${(o.env.SLURM_RESTART_COUNT ?? '0') !== '0' ? ` (restart ${o.env.SLURM_RESTART_COUNT})` : ''}`);
  // The task's log shows where training is, at most every EXP_PROGRESS_SECONDS (default 60): a batch job has no live display.
  const every = Number(o.env.EXP_PROGRESS_SECONDS ?? 60) * 1000;
  let shown = 0;
  let epochs = 0;
  try {
    const end = await launchPoint({
      dir,
      point: dir.slice(o.sweepDir.length + 1),
      env: o.env,
      settings: { launcher: 'slurm', worker: `slurm job ${job} on ${hostname()}`, uploadCheckpoints: false, pinTracking: false },
      output: 'inherit',
      ...(pruner ? { pruner } : {}),
      stopper,
      onMessage: (m) => {
        if (m.type === 'started') epochs = m.epochs;
        else if (m.type === 'progress' && Date.now() - shown >= every) {
          shown = Date.now();
          o.say(`progress: epoch ${m.epoch}/${epochs} batch ${m.batch}/${m.batches}`);
        }
      },
    });
    if (end.status === 'busy') return EXIT.busy;
    o.say(`exp slurm-task: ${dir} ended ${end.status}`);
    if (end.status === 'killed' && requeue.asked) {
      const r = await slurmClient('scontrol', ['requeue', job], o.env);
      o.say(
        r.code === 0 ? `exp slurm-task: requeued ${job}` : `exp slurm-task: scontrol requeue ${job} failed: ${r.stderr.trim()}; run exp run again to resubmit`,
      );
    }
    return end.status === 'completed' || end.status === 'pruned' ? EXIT.ok : end.status === 'killed' ? EXIT.interrupted : EXIT.failed;
  } finally {
    for (const s of signals) process.off(s, onSignal);
  }
}
