/**
 * Where things live in the run store: the one place for file and folder names.
 *
 *   <runs>/<experiment>/<sweep>/            a sweep folder
 *     sweep.yaml  index.json                the resolved experiment and its points
 *     <name>-<key8>/                        a run folder: the unit of work
 *       config.yaml  point.json  run.json   ...
 */
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';

export const DEFAULT_RUNS_DIR = 'runs';

/** Files and folders of a run folder. */
export const RUN_FILES = {
  /** The resolved run config: all that training reads. */
  config: 'config.yaml',
  /** The point's identity and place in its sweep (uid, key, name, params), written with the folder. */
  point: 'point.json',
  /** Status, times, attempts, backend, environment. */
  record: 'run.json',
  /** Best epoch, final evaluation, baseline, throughput: written when the run ends. */
  summary: 'summary.json',
  metrics: 'metrics.jsonl',
  /** The tracking log that sinks replay. */
  events: 'events.jsonl',
  log: 'train.log',
  curves: 'curves.png',
  tags: 'tags.txt',
  split: 'split',
  checkpoints: 'checkpoints',
  /** Thresholds tuned per tag on the validation predictions. */
  thresholds: 'thresholds.json',
  /** Present in a reproduction: what it reproduces. */
  reproduction: 'reproduction.json',
  lock: '.lock',
  /** The MLflow sink's cursor and run ids. */
  sink: '.mlflow.json',
  sinkLock: '.mlflow.lock',
} as const;

/** Files of a sweep folder. */
export const SWEEP_FILES = {
  experiment: 'sweep.yaml',
  index: 'index.json',
  /** An adaptive sweep's study journal (sweep.tpe): every proposal with what was known when it was made, append-only. */
  study: 'study.jsonl',
  /** Held by the one process that proposes for the study. */
  studyLock: '.study.lock',
  /** Why the sweep stopped starting points (sweep.budget), with the best point then; written when its last exp run stopped by its budget. */
  stop: 'stopped.json',
  sink: '.mlflow.json',
  sinkLock: '.mlflow.lock',
} as const;

/** Files of a run's split/ folder: the image names of each side and the split's record. */
export const SPLIT_FILES = {
  record: 'split.json',
  train: 'train.txt',
  val: 'val.txt',
} as const;

/**
 * Held in a synthetic dataset's data.path while one process generates it, so the points of a
 * sweep that start at once write it once (core/data.ts).
 */
export const SYNTH_LOCK = '.synth.lock';

/** Files of a checkpoint folder (checkpoints/last, checkpoints/best) that are not tensors. */
export const CHECKPOINT_FILES = {
  /** The loop state, optimiser settings and tensor list: a checkpoint is whole when it has this and its tensors. */
  state: 'state.json',
} as const;

/** Files of an ensemble folder (made by exp ensemble). */
export const ENSEMBLE_FILES = {
  /** The members, tags and thresholds: what makes a folder an ensemble. */
  manifest: 'ensemble.json',
} as const;
/**
 * A sweep folder's Slurm submissions (exp run --launcher slurm), in its slurm/ folder: jobs.json
 * (every submission: job id, array, task -> point), submit-N.sh (the batch script of submission N,
 * no secrets), tasks-N.json (its task id -> run folder map, read by each array task), logs/ (the tasks' output).
 */
export const SLURM_DIR = 'slurm';
export const SLURM_FILES = {
  jobs: 'jobs.json',
  script: (n: number): string => `submit-${n}.sh`,
  tasks: (n: number): string => `tasks-${n}.json`,
  logs: 'logs',
  /** Held by the exp run that is choosing and submitting points, so two at once never submit the same point twice. */
  submitLock: '.submit.lock',
} as const;
export const slurmPath = (sweepDir: string, name: string): string => join(sweepDir, SLURM_DIR, name);

export type RunFile = keyof typeof RUN_FILES;
export type SweepFile = keyof typeof SWEEP_FILES;
export type SplitFile = keyof typeof SPLIT_FILES;

export const runPath = (runDir: string, file: RunFile): string => join(runDir, RUN_FILES[file]);
export const sweepPath = (sweepDir: string, file: SweepFile): string => join(sweepDir, SWEEP_FILES[file]);
export const checkpointDir = (runDir: string, which: 'last' | 'best'): string => join(runDir, RUN_FILES.checkpoints, which);
export const splitDirOf = (runDir: string): string => join(runDir, RUN_FILES.split);
export const splitPath = (runDir: string, file: SplitFile): string => join(runDir, RUN_FILES.split, SPLIT_FILES[file]);
/** A checkpoint folder's state file (`ckptDir` is checkpoints/last or checkpoints/best). */
export const checkpointStatePath = (ckptDir: string): string => join(ckptDir, CHECKPOINT_FILES.state);
export const ensembleManifestPath = (ensembleDir: string): string => join(ensembleDir, ENSEMBLE_FILES.manifest);

/** A run folder's sweep folder. */
export const sweepDirOf = (runDir: string): string => dirname(runDir);

/** The folder name of a point: its readable name and the first 8 characters of its key. */
export const runDirName = (p: { name: string; key: string }): string => `${p.name}-${p.key.slice(0, 8)}`;

/** The run folder of one point of a sweep (an index.json entry). */
export const pointDir = (sweepDir: string, entry: { dir: string }): string => join(sweepDir, entry.dir);

export const sweepDirPath = (runsDir: string, experiment: string, sweep: string): string => join(runsDir, experiment, sweep);

/** What a run folder uploads when it ends: its config, metrics, summary and curves, its tag vocabulary and tuned thresholds (those it has). */
export const endArtifacts = (dir: string): string[] =>
  [RUN_FILES.config, RUN_FILES.metrics, RUN_FILES.summary, RUN_FILES.curves, RUN_FILES.tags, RUN_FILES.thresholds].filter((f) => existsSync(join(dir, f)));
