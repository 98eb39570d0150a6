import { defineCommand } from './command.js';
import { EXIT } from './io.js';
import { GPUS_FLAG, POINTS_AT_ONCE_FLAG, QUEUE_FLAG, RUNS_DIR_FLAG, parseGpus, runsDirOf } from './flags.js';
import { parseQueueUrl } from '../exec/queue.js';
import { runWorker } from '../exec/worker.js';
import { UsageError } from '../errors.js';

export const workerCommand = defineCommand({
  name: 'worker',
  summary: 'Take sweep points from a queue (exp run --queue) and train them here, until stopped.',
  usage: 'worker --queue redis://HOST:PORT[/DB] [--runs-dir DIR] [--concurrency N] [--gpus 0,1] [--exit-when-idle]',
  details: [
    'Run any number of workers on any number of machines. Each writes the points it takes under its own runs folder and',
    "trains them in `exp train` children. When a worker dies, another takes its point over after the queue's stalled-job",
    'check (about 30 s) and resumes it from the last checkpoint: from the run folder when the runs folder is shared (NFS),',
    'else from the tracking server, where queued runs upload their checkpoints. All workers send to the same MLflow server',
    'and experiment, as the submitter resolved them. Jobs are untrusted: a job whose names or config exp did not write fails',
    "once with a coded reason (QUEUE_JOB_INVALID) and writes nothing. The tracking server is the worker's own when it has one",
    '(--tracking-uri, else MLFLOW_TRACKING_URI): every point goes there with its MLFLOW_TRACKING_TOKEN/USERNAME/PASSWORD,',
    "whatever server a job names. Without one, each job's server is used with no credentials (and a worker holding",
    'credentials but no server refuses to start).',
    'Ctrl-C stops the running points at their next batch and puts them back in the queue; a second Ctrl-C aborts.',
  ].join('\n'),
  positionals: { name: 'argument', max: 0 },
  flags: {
    queue: QUEUE_FLAG,
    'runs-dir': RUNS_DIR_FLAG,
    concurrency: POINTS_AT_ONCE_FLAG,
    gpus: GPUS_FLAG,
    'exit-when-idle': { type: 'boolean', description: 'Exit once the queue has nothing left to do (for batch jobs and tests).' },
    name: { type: 'string', arg: 'NAME', description: "This worker's name in `exp queue status` (default host:pid)." },
    'tracking-uri': {
      type: 'string',
      arg: 'URL',
      description: "This worker's MLflow server (default $MLFLOW_TRACKING_URI): every point is tracked there, and only it gets the credentials.",
    },
    'lock-seconds': {
      type: 'int',
      arg: 'S',
      default: 30,
      min: 2,
      max: 3600,
      description: 'How long a job stays owned without a renewal (BullMQ lockDuration).',
    },
    'stalled-seconds': {
      type: 'int',
      arg: 'S',
      default: 30,
      min: 1,
      max: 3600,
      description: 'How often stalled jobs of dead workers are looked for (BullMQ stalledInterval).',
    },
  },
  async run(_args, flags, io) {
    if (!flags.queue) throw new UsageError({ code: 'USAGE', message: 'give the queue with --queue redis://HOST:PORT' });
    const gpus = parseGpus(flags.gpus);
    const counts = await runWorker({
      conn: parseQueueUrl(flags.queue),
      runsDir: runsDirOf(flags['runs-dir'], io),
      concurrency: flags.concurrency ?? (gpus?.length || 1),
      ...(gpus ? { gpus } : {}),
      env: io.env,
      ...(flags['tracking-uri'] ? { trackingUri: flags['tracking-uri'] } : {}),
      say: (l) => io.stdout.write(`${new Date().toISOString().slice(11, 19)} ${l}\n`),
      ...(flags.name ? { name: flags.name } : {}),
      exitWhenIdle: flags['exit-when-idle'],
      lockMs: flags['lock-seconds'] * 1000,
      stalledMs: flags['stalled-seconds'] * 1000,
    });
    io.stdout.write(`worker done: ${counts.completed} completed, ${counts.failed} failed, ${counts.requeued} put back in the queue\n`);
    return EXIT.ok;
  },
});
