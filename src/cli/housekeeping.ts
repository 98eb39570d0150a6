import { existsSync, rmSync } from 'node:fs';
import { resolve } from 'node:path';
import { defineCommand } from './command.js';
import { EXIT, cwdOf } from './io.js';
import { RUNS_DIR_FLAG, runFoldersUnder, runsDirOf } from './flags.js';
import { displayPath } from './report.js';
import { UsageError } from '../errors.js';
import { keyProblem } from '../mlflow/batch.js';
import { EventLog } from '../track/events.js';
import { forgetTracked } from '../track/forget.js';
import { syncRun } from '../track/sync.js';
import { clientsFromEnv } from '../mlflow/client.js';
import { findRunFolder } from '../store/find.js';
import { findRunDirs } from '../store/list.js';
import { collectable, removeRunFolder, sizeOf } from '../store/remove.js';
import { isRunFolder, readRunRecord, runFolderBusy, writeRunRecord } from '../store/run.js';
import { sweepPath } from '../store/layout.js';

const mib = (b: number): string => `${(b / 2 ** 20).toFixed(1)} MiB`;

export const tagCommand = defineCommand({
  name: 'tag',
  summary: 'Label a run with key=value tags, kept in its run.json and sent to MLflow (exp runs --filter "tags.KEY = \'V\'").',
  usage: 'tag RUN key=value... [--remove KEY]',
  details:
    "RUN is a run folder or a run key (or a prefix). A tag set again takes the new value. Tags are sent to the run's MLflow run at once when tracking is on (exp sync retries otherwise).",
  positionals: { name: 'RUN key=value', min: 1 },
  flags: {
    remove: { type: 'list', arg: 'KEY', description: 'Remove this tag from run.json (MLflow keeps what it has; remove it there in the UI).' },
    'runs-dir': RUNS_DIR_FLAG,
  },
  async run(args, flags, io) {
    const dir = findRunFolder(args[0]!, cwdOf(io), runsDirOf(flags['runs-dir'], io));
    const pairs = args.slice(1).map((a) => {
      const at = a.indexOf('=');
      if (at <= 0) throw new UsageError(`'${a}' is not key=value`, 'BAD_OPTION_VALUE', 'e.g. exp tag RUN team=vision');
      const key = a.slice(0, at);
      const problem = keyProblem(key);
      if (problem || key.startsWith('mlflow.') || key.startsWith('exp.'))
        throw new UsageError(
          `tag key '${key}': ${problem ?? 'the mlflow. and exp. prefixes are reserved'}`,
          'BAD_OPTION_VALUE',
          'use letters, digits, _ - . / and space',
        );
      return [key, a.slice(at + 1)] as const;
    });
    if (pairs.length === 0 && flags.remove.length === 0) throw new UsageError('give at least one key=value (or --remove KEY)', 'USAGE');
    const busy = runFolderBusy(dir);
    if (busy.busy) throw new UsageError(`${dir} is being trained by ${busy.owner}`, 'USAGE', 'tag it once it has ended');
    const rec = readRunRecord(dir);
    if (!rec) throw new UsageError(`${dir} has not run yet (no run.json)`, 'USAGE', 'train it first');
    const tags = { ...(rec.tags ?? {}), ...Object.fromEntries(pairs) };
    for (const k of flags.remove) delete tags[k];
    writeRunRecord(dir, { ...rec, tags });
    if (pairs.length > 0) new EventLog(dir).append({ type: 'tags', tags: Object.fromEntries(pairs) });
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
    'RUN is a run folder or a run key (or a prefix); SWEEP a sweep folder (all its runs, and its parent run in MLflow).',
    'Without --yes it only lists what would go. A folder being trained is refused. MLflow runs are marked deleted',
    "(restorable in the UI until the server's garbage collection); when the server cannot be reached, the folder is still",
    'removed and the run ids to delete by hand are printed.',
  ].join('\n'),
  positionals: { name: 'RUN', min: 1 },
  flags: { yes: { type: 'boolean', description: 'Really remove (otherwise: a dry run).' }, 'runs-dir': RUNS_DIR_FLAG },
  async run(args, flags, io) {
    const cwd = cwdOf(io);
    const targets = args.map((a) => {
      const p = resolve(cwd, a);
      if (existsSync(sweepPath(p, 'index')) && !isRunFolder(p)) return { kind: 'sweep' as const, dir: p, runs: findRunDirs(p, 1).filter((d) => d !== p) };
      return { kind: 'run' as const, dir: findRunFolder(a, cwd, runsDirOf(flags['runs-dir'], io)), runs: [] as string[] };
    });
    const runs = targets.flatMap((t) => (t.kind === 'run' ? [t.dir] : t.runs));
    const busy = runs.filter((d) => runFolderBusy(d).busy);
    if (busy.length > 0)
      throw new UsageError(`being trained now: ${busy.map((d) => displayPath(d, cwd)).join(', ')}`, 'USAGE', 'wait for them to end (or stop them) first');
    const bytes = targets.reduce((a, t) => a + sizeOf(t.dir), 0);
    if (!flags.yes) {
      for (const t of targets) io.stdout.write(`would remove ${t.kind} ${displayPath(t.dir, cwd)}${t.kind === 'sweep' ? ` (${t.runs.length} runs)` : ''}\n`);
      io.stdout.write(`${mib(bytes)} in all. Nothing removed: add --yes to remove.\n`);
      return EXIT.ok;
    }
    const clients = clientsFromEnv(io.env, { timeoutMs: 10_000, retries: 1 });
    for (const t of targets) {
      for (const d of t.kind === 'run' ? [t.dir] : t.runs) {
        const tracked = await forgetTracked(d, 'run', clients);
        removeRunFolder(d);
        io.stdout.write(`removed ${displayPath(d, cwd)} (${tracked})\n`);
      }
      if (t.kind === 'sweep') {
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
    'runs deleted. Runs being trained are never touched.',
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
    const clients = clientsFromEnv(io.env, { timeoutMs: 10_000, retries: 1 });
    for (const d of dirs) {
      const status = readRunRecord(d)?.status;
      if (flags.failed && (status === 'failed' || status === 'killed') && !runFolderBusy(d).busy) {
        const bytes = sizeOf(d);
        if (!flags['dry-run']) {
          const tracked = await forgetTracked(d, 'run', clients);
          removeRunFolder(d);
          io.stdout.write(`removed ${status} run ${displayPath(d, cwd)} (${mib(bytes)}; ${tracked})\n`);
        } else io.stdout.write(`would remove ${status} run ${displayPath(d, cwd)} (${mib(bytes)})\n`);
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
