import { existsSync, readdirSync, rmSync } from 'node:fs';
import { resolve } from 'node:path';
import { defineCommand } from './command.js';
import { EXIT, cwdOf, type Io } from './io.js';
import { RUNS_DIR_FLAG, runFoldersUnder, runsDirOf } from './flags.js';
import { displayPath } from './report.js';
import { ReproduceError, StoreError, UsageError } from '../errors.js';
import { keyProblem } from '../mlflow/batch.js';
import { EventLog } from '../track/events.js';
import { tagsEvent } from '../track/event-builders.js';
import { forgetTracked } from '../track/forget.js';
import { syncRun } from '../track/sync.js';
import { clientsFromEnv, SINK_TUNING } from '../mlflow/client.js';
import { findRunFolder } from '../store/find.js';
import { findRunDirs, listRunFolders } from '../store/list.js';
import { collectable, removeRunFolder, sizeOf } from '../store/remove.js';
import { lockRunFolder, readPoint, readRunRecord, writeRunRecord } from '../store/run.js';
import { readSweepIndex } from '../store/sweep.js';
import { runPath, sweepPath } from '../store/layout.js';

const mib = (b: number): string => `${(b / 2 ** 20).toFixed(1)} MiB`;

/** Runs `f` holding the folder's training lock: no trainer, worker or other command starts on it meanwhile (LOCKED, exit 1, if one holds it). */
async function withRunLock<T>(dir: string, f: () => Promise<T> | T): Promise<T> {
  const lock = await lockRunFolder(dir);
  try {
    return await f();
  } finally {
    lock.release();
  }
}

/** Removes a run folder under its lock, after marking its MLflow run deleted; says what happened in MLflow. */
const removeRun = (dir: string, clients: ReturnType<typeof clientsFromEnv>, opts: { onlyIfEnded?: boolean } = {}): Promise<string> =>
  withRunLock(dir, async () => {
    const said = await forgetTracked(dir, 'run', clients, opts);
    removeRunFolder(dir, { held: true });
    return said;
  });

/** A run folder as exp writes it (config.yaml and point.json), or a coded error: exp rm deletes nothing else. */
function strictRunFolder(dir: string): string {
  if (!existsSync(runPath(dir, 'config')) || !existsSync(runPath(dir, 'point'))) {
    throw new StoreError({
      code: 'NOT_A_RUN_FOLDER',
      message: `${dir} is not a run folder written by exp (no config.yaml and point.json)`,
      file: dir,
      fix: 'give a run folder (runs/<experiment>/<sweep>/<run>), a run key, or a sweep folder',
    });
  }
  readPoint(dir); // parses, or a coded error
  return dir;
}

/** What `exp rm` was given: a sweep folder (sweep.yaml + a valid index.json), a run folder, or a run key that names exactly one folder. */
function rmTarget(spec: string, io: Io, runsDir: string): { kind: 'run' | 'sweep'; dir: string; runs: string[] } {
  const p = resolve(cwdOf(io), spec);
  if (existsSync(p)) {
    if (existsSync(sweepPath(p, 'experiment')) && existsSync(sweepPath(p, 'index'))) {
      if (!readSweepIndex(p)?.points)
        throw new StoreError({
          code: 'NOT_A_SWEEP_FOLDER',
          message: `${p}/index.json is not a sweep index`,
          file: p,
          fix: 'give a sweep folder written by exp run',
        });
      return {
        kind: 'sweep',
        dir: p,
        runs: findRunDirs(p, 1)
          .filter((d) => d !== p)
          .map(strictRunFolder),
      };
    }
    return { kind: 'run', dir: strictRunFolder(p), runs: [p] };
  }
  if (!/^[0-9a-f]{4,12}$/i.test(spec)) return { kind: 'run', dir: strictRunFolder(findRunFolder(spec, cwdOf(io), runsDir)), runs: [] };
  // A delete takes a key only when it names one folder (exp evaluate may prefer an original; rm must not guess).
  const matches = listRunFolders(runsDir).filter(({ dir }) => {
    try {
      return readPoint(dir).key.startsWith(spec.toLowerCase());
    } catch {
      return false;
    }
  });
  if (matches.length !== 1) {
    throw new ReproduceError({
      code: matches.length === 0 ? 'RUN_NOT_FOUND' : 'RUN_AMBIGUOUS',
      message: `run key '${spec}' names ${matches.length} run folders under ${runsDir}${matches.length ? `:\n${matches.map((m) => `  ${m.dir}`).join('\n')}` : ''}`,
      fix: 'give the run folder itself',
    });
  }
  const dir = strictRunFolder(matches[0]!.dir);
  return { kind: 'run', dir, runs: [dir] };
}

export const tagCommand = defineCommand({
  name: 'tag',
  summary: 'Label a run with key=value tags, kept in its run.json and sent to MLflow (exp runs --filter "tags.KEY = \'V\'").',
  usage: 'tag RUN key=value... [--remove KEY]',
  details:
    "RUN is a run folder or a run key (or a prefix). A tag set again takes the new value. Tags are sent to the run's MLflow run at once when tracking is on (exp sync retries otherwise). A run being trained is refused (LOCKED): tag it once it has ended.",
  positionals: { name: 'RUN key=value', min: 1 },
  flags: {
    remove: { type: 'list', arg: 'KEY', description: 'Remove this tag from run.json (MLflow keeps what it has; remove it there in the UI).' },
    'runs-dir': RUNS_DIR_FLAG,
  },
  async run(args, flags, io) {
    const dir = findRunFolder(args[0]!, cwdOf(io), runsDirOf(flags['runs-dir'], io));
    const pairs = args.slice(1).map((a) => {
      const at = a.indexOf('=');
      if (at <= 0) throw new UsageError({ code: 'BAD_OPTION_VALUE', message: `'${a}' is not key=value`, fix: 'e.g. exp tag RUN team=vision' });
      const key = a.slice(0, at);
      const problem = keyProblem(key);
      if (problem || key.startsWith('mlflow.') || key.startsWith('exp.'))
        throw new UsageError({
          code: 'BAD_OPTION_VALUE',
          message: `tag key '${key}': ${problem ?? 'the mlflow. and exp. prefixes are reserved'}`,
          fix: 'use letters, digits, _ - . / and space',
        });
      return [key, a.slice(at + 1)] as const;
    });
    if (pairs.length === 0 && flags.remove.length === 0) throw new UsageError({ code: 'USAGE', message: 'give at least one key=value (or --remove KEY)' });
    // Under the training lock: the trainer also writes run.json and appends to events.jsonl.
    const tags = await withRunLock(dir, () => {
      const rec = readRunRecord(dir);
      if (!rec) throw new UsageError({ code: 'USAGE', message: `${dir} has not run yet (no run.json)`, fix: 'train it first' });
      const next = { ...(rec.tags ?? {}), ...Object.fromEntries(pairs) };
      for (const k of flags.remove) delete next[k];
      writeRunRecord(dir, { ...rec, tags: next });
      if (pairs.length > 0) new EventLog(dir).append(tagsEvent(Object.fromEntries(pairs)));
      return next;
    });
    const sync = pairs.length > 0 ? await syncRun(dir, clientsFromEnv(io.env), { env: io.env }) : undefined;
    const where =
      !sync || sync.outcome === 'off' ? '' : sync.error ? `; MLflow not updated (${sync.error}); exp sync retries` : `; sent to MLflow run ${sync.runId}`;
    io.stdout.write(
      `${displayPath(dir, cwdOf(io))}: ${
        Object.entries(tags)
          .map(([k, v]) => `${k}=${v}`)
          .join(' ') || '(no tags)'
      }${where}\n`,
    );
    return EXIT.ok;
  },
});

export const rmCommand = defineCommand({
  name: 'rm',
  summary: 'Remove run folders (or whole sweeps) and mark their MLflow runs deleted.',
  usage: 'rm RUN|SWEEP... --yes',
  details: [
    'RUN is a run folder (config.yaml and point.json) or a run key naming exactly one folder; SWEEP a sweep folder',
    '(sweep.yaml and index.json): all its runs, and its parent run in MLflow. Nothing else is ever removed. Without --yes it',
    "only lists what would go. A folder being trained is refused (LOCKED). MLflow runs are marked deleted (restorable in the UI until the server's garbage collection); a run",
    "that is not this folder's own (a copied folder's) is kept; when the server cannot be reached, the folder is still removed and the run id to delete by hand is printed.",
  ].join('\n'),
  positionals: { name: 'RUN', min: 1 },
  flags: { yes: { type: 'boolean', description: 'Really remove (otherwise: a dry run).' }, 'runs-dir': RUNS_DIR_FLAG },
  async run(args, flags, io) {
    const cwd = cwdOf(io);
    const runsDir = runsDirOf(flags['runs-dir'], io);
    const targets = args.map((a) => rmTarget(a, io, runsDir));
    const bytes = targets.reduce((a, t) => a + sizeOf(t.dir), 0);
    if (!flags.yes) {
      for (const t of targets) io.stdout.write(`would remove ${t.kind} ${displayPath(t.dir, cwd)}${t.kind === 'sweep' ? ` (${t.runs.length} runs)` : ''}\n`);
      io.stdout.write(`${mib(bytes)} in all. Nothing removed: add --yes to remove.\n`);
      return EXIT.ok;
    }
    const clients = clientsFromEnv(io.env, SINK_TUNING);
    for (const t of targets) {
      for (const d of t.runs) {
        const tracked = await removeRun(d, clients);
        io.stdout.write(`removed ${displayPath(d, cwd)} (${tracked})\n`);
      }
      if (t.kind === 'sweep') {
        if (readdirSync(t.dir).some((n) => existsSync(runPath(resolve(t.dir, n), 'config')))) {
          io.stdout.write(`kept sweep ${displayPath(t.dir, cwd)}: it still holds run folders\n`);
          continue;
        }
        const tracked = await forgetTracked(t.dir, 'sweep', clients);
        rmSync(t.dir, { recursive: true, force: true });
        io.stdout.write(`removed sweep ${displayPath(t.dir, cwd)} (parent: ${tracked})\n`);
      }
    }
    io.stdout.write(`${mib(bytes)} freed\n`);
    return EXIT.ok;
  },
});

export const gcCommand = defineCommand({
  name: 'gc',
  summary: 'Free disk: last checkpoints and staged uploads of finished runs; with --failed, failed and killed runs too.',
  usage: 'gc [PATH...] [--failed] [--dry-run]',
  details: [
    'PATH: run, sweep or experiment folders, or the runs folder (the default). For each completed or pruned run, its',
    'checkpoints/last goes (checkpoints/best stays: evaluate, predict, export and reproduce use it), as do staged',
    'uploads and leftovers of interrupted writes. --failed also removes failed and killed runs whole and marks their MLflow',
    'runs deleted (unless the server has them finished: another worker took the point over). Runs being trained are never touched.',
  ].join('\n'),
  positionals: { name: 'PATH', min: 0 },
  flags: {
    failed: { type: 'boolean', description: 'Also remove failed and killed run folders (and mark their MLflow runs deleted).' },
    'dry-run': { type: 'boolean', description: 'Only list what would be freed.' },
  },
  async run(args, flags, io) {
    const cwd = cwdOf(io);
    const dirs = runFoldersUnder(args, io);
    let freed = 0;
    let count = 0;
    const clients = clientsFromEnv(io.env, SINK_TUNING);
    for (const d of dirs) {
      const status = readRunRecord(d)?.status;
      if (flags.failed && (status === 'failed' || status === 'killed') && existsSync(runPath(d, 'point'))) {
        const bytes = sizeOf(d);
        if (flags['dry-run']) {
          io.stdout.write(`would remove ${status} run ${displayPath(d, cwd)} (${mib(bytes)})\n`);
        } else {
          let tracked: string;
          try {
            tracked = await removeRun(d, clients, { onlyIfEnded: true });
          } catch (e) {
            io.stdout.write(`kept ${displayPath(d, cwd)}: ${(e as Error).message}\n`);
            continue;
          }
          io.stdout.write(`removed ${status} run ${displayPath(d, cwd)} (${mib(bytes)}; ${tracked})\n`);
        }
        freed += bytes;
        count++;
        continue;
      }
      for (const p of collectable(d)) {
        const bytes = sizeOf(p);
        if (!flags['dry-run']) rmSync(p, { recursive: true, force: true });
        io.stdout.write(`${flags['dry-run'] ? 'would remove' : 'removed'} ${displayPath(p, cwd)} (${mib(bytes)})\n`);
        freed += bytes;
        count++;
      }
    }
    io.stdout.write(
      `${flags['dry-run'] ? 'would free' : 'freed'} ${mib(freed)} (${count} item${count === 1 ? '' : 's'} in ${dirs.length} run folder${dirs.length === 1 ? '' : 's'})\n`,
    );
    return EXIT.ok;
  },
});
