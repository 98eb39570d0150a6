/**
 * Trains one run folder: the unit of work. Everything comes from the folder (config.yaml,
 * point.json, and on resume its checkpoints and split); everything goes back into it.
 * `exp run`, queue workers, resume and `exp reproduce` all end here, in an `exp train` child.
 */
import * as tf from '@tensorflow/tfjs';
import { rmSync } from 'node:fs';
import { hostname } from 'node:os';
import { randomUUID } from 'node:crypto';
import { join } from 'node:path';
import { checkpointDir, endArtifacts, RUN_FILES, runPath } from '../store/layout.js';
import { lockRunFolder, readPoint, readRunConfig, readRunRecord, writePoint, writeRunRecord } from '../store/run.js';
import { captureEnvironment } from '../store/environment.js';
import { appendText, writeFileAtomic } from '../util/fsx.js';
import { ExpError, fromSystemError } from '../errors.js';
import type { RunRecord } from '../store/types.js';
import { EventLog, readEvents } from '../track/events.js';
import { flushMsFor, LiveSync } from '../track/live.js';
import { selectBackend } from '../backend/select.js';
import { loadDataset, describeReport } from '../data/planet.js';
import { initialState, makeOptimizer, trainLoop, type EpochRecord, type LoopState, type StopReason } from './loop.js';
import { finalEvaluation, targetsOf } from './final.js';
import { resumePoint, saveCheckpoint, stageForUpload } from './checkpoint.js';
import { buildWithBase, setDropoutStep, dropoutStep } from './model.js';
import { ensureDataset, resolveSplit } from './data.js';
import { checkpointArtifacts, RunOutputs } from './outputs.js';
import { Progress, type Out } from './progress.js';
import { StopControl, tellParent } from './stop.js';
import { HOLD_EPOCHS_VAR, holdEpochsOf } from '../exec/protocol.js';
import { bestConstantBaseline } from './metrics.js';
import { SystemSampler } from './system.js';

export interface TrainOptions {
  out: Out;
  /** Decoded-image cache folder (default: $EXP_CACHE_DIR or ~/.cache/exp/decoded). */
  cacheDir?: string;
  /** Train even if run.json says the run ended. */
  force?: boolean;
  env?: NodeJS.ProcessEnv;
}

/** Trains the run folder `dir`; returns its final record. */
export async function trainRunFolder(dir: string, opts: TrainOptions): Promise<RunRecord> {
  const cfg = readRunConfig(dir);
  let point = readPoint(dir);
  const lock = await lockRunFolder(dir);
  const log = (s: string): void => {
    opts.out.write(s);
    appendText(runPath(dir, 'log'), s.replaceAll('\r\x1b[2K', ''));
  };
  const prev = readRunRecord(dir);
  if ((prev?.status === 'completed' || prev?.status === 'pruned') && !opts.force) {
    lock.release();
    return prev;
  }
  if (opts.force) {
    // Train from scratch: drop what the run produced, keep its config and split. It is a new
    // run, so it gets a new identity: its tracking record starts afresh (the old one stays).
    for (const f of [RUN_FILES.checkpoints, RUN_FILES.summary, RUN_FILES.curves, RUN_FILES.metrics, RUN_FILES.events, RUN_FILES.sink])
      rmSync(join(dir, f), { recursive: true, force: true });
    point = { ...point, uid: randomUUID() };
    writePoint(dir, point);
  }
  const env = opts.env ?? process.env;
  const record: RunRecord = {
    key: point.key,
    uid: point.uid,
    name: point.name,
    status: 'running',
    created: prev?.created ?? new Date().toISOString(),
    started: new Date().toISOString(),
    attempts: (prev?.attempts ?? 0) + 1,
    pid: process.pid,
    host: hostname(),
    ...(prev?.tags ? { tags: prev.tags } : {}),
    ...(env.CUDA_VISIBLE_DEVICES !== undefined ? { gpus: env.CUDA_VISIBLE_DEVICES } : {}),
    ...(env.EXP_LAUNCHER
      ? { launcher: { kind: env.EXP_LAUNCHER === 'queue' || env.EXP_LAUNCHER === 'slurm' ? env.EXP_LAUNCHER : 'local', ...(env.EXP_WORKER ? { worker: env.EXP_WORKER } : {}) } as const }
      : {}),
  };
  const events = new EventLog(dir);
  const outputs = new RunOutputs(dir, cfg, point, events);
  const end = (status: RunRecord['status'], reason: string): RunRecord => {
    Object.assign(record, { status, reason, ended: new Date().toISOString() });
    writeRunRecord(dir, record);
    return record;
  };
  // A sweep scheduler's rungs (ASHA): at these epochs the run waits for the launcher's verdict before training on.
  const hold = holdEpochsOf(env[HOLD_EPOCHS_VAR]);
  const stop = new StopControl({
    say: log,
    stillHeld: () => lock.stillHeld(),
    termOnce: env.EXP_LAUNCHER === 'slurm',
    abort: (reason) => {
      end('killed', reason);
      outputs.ended('killed', reason, null, []);
      lock.release();
    },
  }).install();
  try {
    writeRunRecord(dir, record);
    await ensureDataset(cfg, log);
    const backend = await selectBackend(cfg.backend);
    record.backend = backend;
    record.environment = captureEnvironment();
    writeRunRecord(dir, record);
    log(`run ${point.name} (key ${point.key}) on ${backend.name} (${backend.device}, ${backend.threads} thread${backend.threads === 1 ? '' : 's'})\n`);
    if (backend.note) log(`note: ${backend.name}: ${backend.note}\n`);
    if (cfg.training.require_gpu && (backend.device === 'cpu' || backend.device.startsWith('wasm'))) {
      throw new ExpError({
        code: 'NO_GPU',
        message: `training.require_gpu is set but ${backend.name} runs on the ${backend.device === 'cpu' ? 'CPU' : 'wasm runtime'} here${backend.note ? ` (${backend.note})` : ''}`,
        fix: 'run it where an NVIDIA GPU is visible, with the GPU build (bash scripts/build-native-backend.sh --gpu), or set training.require_gpu: false',
        exit: 'failed',
      });
    }

    const ds = await loadDataset(cfg.data, { cacheDir: opts.cacheDir, onProgress: (m) => log(`data: ${m}\n`) });
    for (const line of describeReport(ds.report)) log(`${line}\n`);
    const split = resolveSplit(dir, ds, cfg);
    writeFileAtomic(runPath(dir, 'tags'), ds.tags.join('\n') + '\n');
    log(`split: ${split.train.length} train / ${split.val.length} validation (hash ${split.hash})\n`);

    const { model, base, counts, loaded } = await buildWithBase(cfg, ds.tags.length);
    if (loaded) log(`weights: ${loaded}\n`);
    let state: LoopState = initialState(cfg);
    const optimizer = makeOptimizer(cfg, state.lr);
    const lastDir = checkpointDir(dir, 'last');
    const bestDir = checkpointDir(dir, 'best');
    const resume = await resumePoint([lastDir, bestDir], model, optimizer, base);
    for (const s of resume.skipped)
      log(`warning: checkpoint ${s.dir} is not usable (${s.reason}); ${resume.dir ? `resuming from ${resume.dir} instead` : 'trying the next'}\n`);
    if (resume.dir) {
      state = resume.info.state;
      setDropoutStep(model, state.dropoutStep ?? 0);
      const where = state.position ? `inside epoch ${state.position.epoch}, after batch ${state.position.batch}` : `after epoch ${state.epoch}`;
      log(`resuming from ${resume.dir === lastDir ? 'checkpoints/last' : 'checkpoints/best'} ${where}\n`);
    } else if (resume.skipped.length > 0) log('warning: no usable checkpoint: training starts over from the base weights\n');
    log(
      `model: VGG16 ${cfg.data.image_size}x${cfg.data.image_size}, trainable blocks [${cfg.model.trainable_blocks.join(', ')}], ${counts.trainable.toLocaleString('en')} of ${counts.total.toLocaleString('en')} parameters trainable\n`,
    );
    outputs.started(state, resume.dir !== null, backend, ds, split);

    const baseline = bestConstantBaseline(targetsOf(ds, split.train), targetsOf(ds, split.val), ds.tags.length, cfg.metrics.beta);
    const live = new LiveSync(dir, env);
    const system = new SystemSampler(events, cfg.tracking.system_metrics_seconds, backend);
    const progress = new Progress({ write: opts.out.write.bind(opts.out), isTTY: opts.out.isTTY }, cfg.training.epochs, log);
    const tensorsAtStart = tf.memory().numTensors;
    const tensorCounts: number[] = [];
    const everyMs = (cfg.checkpoint.every_minutes ?? 0) * 60_000;
    let lastSave = Date.now();
    const saveLast = async (st: LoopState): Promise<void> => {
      if (!cfg.checkpoint.save_last) return;
      st.dropoutStep = dropoutStep(model);
      await saveCheckpoint(lastDir, model, optimizer, st, base);
      lastSave = Date.now();
      if (env.EXP_UPLOAD_CHECKPOINTS === '1') {
        // A queued run: another worker may have to resume it from the tracking server.
        const staged = stageForUpload(lastDir);
        events.append({ type: 'checkpoint', path: `${RUN_FILES.checkpoints}/${staged}`, label: staged.replace(/^upload-/, '') });
        live.kick();
      }
    };
    tellParent({ type: 'started', backend: backend.name, epochs: cfg.training.epochs, done: state.epoch });
    // Stopped while it waited at a rung (its launcher killed): it asks again for the verdict it never got before training on.
    const unjudged = rungUnjudged(dir, hold, state, cfg.training.epochs);
    if (unjudged) {
      tellParent({ type: 'epoch', epoch: unjudged.epoch, metrics: unjudged.metrics, improved: false });
      await awaitRung(stop, events, unjudged.epoch, log);
    }
    system.start();
    const stopped: StopReason = await trainLoop(model, optimizer, ds, split, cfg, state, {
      onBatch: (p) => {
        progress.batch(p);
        tellParent({ type: 'progress', ...p });
      },
      stopRequested: () => stop.get(),
      checkpointDue: () => everyMs > 0 && Date.now() - lastSave >= everyMs,
      onPosition: saveLast,
      onEpoch: async (r, st, improved) => {
        st.dropoutStep = dropoutStep(model);
        // best before last: a crash between the two then redoes this epoch, rewriting best.
        if (improved && cfg.checkpoint.save_best) await saveCheckpoint(bestDir, model, optimizer, st, base);
        await saveLast(st);
        await outputs.epoch(r, st, baseline.fbeta);
        live.kick();
        tensorCounts.push(tf.memory().numTensors);
        progress.epoch(r, cfg.checkpoint.monitor, improved);
        tellParent({ type: 'epoch', epoch: r.epoch, metrics: r.metrics, improved });
        if (hold.has(r.epoch) && r.epoch < cfg.training.epochs) await awaitRung(stop, events, r.epoch, log);
      },
    });
    system.stop();

    // The recipe's final step: reload the best checkpoint and evaluate it (and tune thresholds on it).
    let final: Record<string, number> | null = null;
    let evalIps: number | null = null;
    if ((stopped.status === 'completed' || stopped.status === 'pruned') && cfg.checkpoint.save_best && state.best) {
      await resumePoint([bestDir], model, optimizer, base);
      ({ final, evalImagesPerSecond: evalIps } = await finalEvaluation(model, ds, split, cfg, dir));
    }
    const summary = outputs.summary({
      stop: stopped,
      state,
      backend,
      final,
      baseline,
      started: Date.parse(record.started!),
      evalImagesPerSecond: evalIps,
      tensors: { at_start: tensorsAtStart, after_each_epoch: tensorCounts },
      params: counts,
      split,
      tags: ds.tags,
      peakRssMb: Math.round(process.resourceUsage().maxRSS / 1024),
    });
    if (env.EXP_UPLOAD_CHECKPOINTS === '1' && (stopped.status === 'completed' || stopped.status === 'pruned')) events.append({ type: 'checkpoint_done' });
    const ok = stopped.status === 'completed' || stopped.status === 'pruned';
    if (ok && state.best && cfg.checkpoint.save_best && cfg.tracking.log_checkpoints !== 'none')
      events.append({ type: 'model', name: 'model', step: state.best.epoch });
    outputs.ended(
      stopped.status,
      stopped.reason,
      summary,
      stopped.status === 'failed' ? [] : [...endArtifacts(dir), ...checkpointArtifacts(cfg.tracking.log_checkpoints)],
    );
    end(stopped.status, stopped.reason);
    await live.flush(flushMsFor(env));
    const best = summary.best;
    log(
      `${stopped.status}: ${stopped.reason}${best ? `; best epoch ${best.epoch}: val_loss ${best.metrics.val_loss!.toFixed(4)}, val_fbeta ${best.metrics.val_fbeta!.toFixed(4)}` : ''} (constant baseline val_fbeta ${baseline.fbeta.toFixed(4)}, top-${baseline.k} tags)\n`,
    );
    model.dispose();
    optimizer.dispose();
    return record;
  } catch (e) {
    // Record the failure in the folder, its log and the tracking log before reporting it; each
    // step on its own, since a full disk may refuse some of them.
    const err = e instanceof ExpError ? e : (fromSystemError(e) ?? e);
    const reason = (err as Error).message;
    try {
      log(`failed: ${err instanceof ExpError ? err.render() : reason}\n`);
    } catch {
      /* the log itself cannot be written */
    }
    try {
      end('failed', reason);
    } catch {
      /* run.json cannot be written either */
    }
    try {
      outputs.ended('failed', reason, null, []);
    } catch {
      /* nor the event log */
    }
    throw err;
  } finally {
    stop.uninstall();
    lock.release();
  }
}

/** A launcher that has not answered at a rung in this long is taken to have none to give: the run goes on. */
const RUNG_WAIT_MS = 10 * 60_000;

/** Waits at a rung for the scheduler's verdict; a go-on with numbers is logged as a `rung` event (a prune ends the run at the next check). */
async function awaitRung(stop: StopControl, events: EventLog, epoch: number, log: (line: string) => void): Promise<void> {
  const v = await stop.verdict(epoch, RUNG_WAIT_MS);
  if (v.timedOut) log(`no verdict from the sweep's scheduler at epoch ${epoch} in ${RUNG_WAIT_MS / 60_000} min: going on\n`);
  else if (v.go && v.note) {
    events.append({ type: 'rung', epoch, decision: 'continued', reason: v.note });
    log(`${v.note}\n`);
  }
}

/** The last epoch's record when it is a rung the run has no verdict for (no `rung` event, and nothing of the next epoch trained). */
function rungUnjudged(dir: string, hold: ReadonlySet<number>, state: LoopState, epochs: number): EpochRecord | undefined {
  const last = state.history.at(-1);
  if (!last || last.epoch !== state.epoch || !hold.has(state.epoch) || state.epoch >= epochs) return undefined;
  if (state.position && !(state.position.epoch === state.epoch + 1 && state.position.batch === 0)) return undefined;
  return readEvents(dir).events.some((e) => e.type === 'rung' && e.epoch === state.epoch) ? undefined : last;
}
