/**
 * Trains one run folder: the unit of work. Everything comes from the folder (config.yaml,
 * and on resume its checkpoints and split); everything goes back into it (run.json,
 * metrics.jsonl, events.jsonl, split/, checkpoints/, curves.png, summary.json, train.log).
 * Local runs, resume and reproduce all call this.
 */
import * as tf from '@tensorflow/tfjs';
import { appendFileSync, existsSync, mkdirSync, readFileSync, rmSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { readRunConfig } from '../track/store.js';
import { EventLog, readEvents } from '../track/events.js';
import { LiveSync } from '../track/live.js';
import { captureEnvironment } from '../track/env.js';
import { acquireLock } from '../exec/lock.js';
import { selectBackend, type BackendInfo } from '../backend/select.js';
import { loadDataset, describeReport, DataError, type Dataset } from '../data/planet.js';
import { synthesize } from '../data/synth.js';
import { splitHash, splitIndices } from '../data/split.js';
import { buildModel, countParams } from '../model/vgg16.js';
import { resolveWeights, loadWeights } from '../model/weights.js';
import { runKey } from '../sweep/key.js';
import { flatten } from '../util/object.js';
import { readJson, writeFileAtomic, writeJsonAtomic } from '../util/fsx.js';
import { evaluate, initialState, makeOptimizer, metricsOf, monitorMode, trainLoop, type LoopState, type StopReason } from './loop.js';
import { hasCheckpoint, loadCheckpoint, saveCheckpoint } from './checkpoint.js';
import { curvesPng } from './curves.js';
import { Progress, type Out } from './progress.js';
import { bestConstantBaseline } from './metrics.js';
import type { RunConfig } from '../config/normalise.js';

export type RunStatus = 'planned' | 'running' | 'completed' | 'failed' | 'killed';

export interface RunRecord {
  key: string;
  name: string;
  status: RunStatus;
  reason?: string;
  created: string;
  started?: string;
  ended?: string;
  attempts: number;
  backend?: BackendInfo;
  environment?: ReturnType<typeof captureEnvironment>;
}

export const readRunRecord = (dir: string): RunRecord | undefined => readJson<RunRecord>(join(dir, 'run.json'));

export interface TrainOptions {
  out: Out;
  /** Decoded-image cache folder (default: $EXP_CACHE_DIR or ~/.cache/exp/decoded). */
  cacheDir?: string;
  /** Polled between batches; true stops the run as killed. */
  interrupted?: () => boolean;
  /** Train even if run.json says completed. */
  force?: boolean;
}

/** Generates the synthetic dataset if the config asks for it and data.path has none. */
export async function ensureDataset(cfg: RunConfig, out: Out): Promise<void> {
  const csv = join(cfg.data.path, cfg.data.csv);
  if (existsSync(csv) || !cfg.data.synth) return;
  out.write(`data: ${csv} is missing; generating a synthetic Planet-style dataset (${cfg.data.synth.count} images, seed ${cfg.data.synth.seed}) ...\n`);
  const t0 = performance.now();
  try {
    await synthesize({ outDir: cfg.data.path, count: cfg.data.synth.count, seed: cfg.data.synth.seed, size: cfg.data.synth.size });
  } catch (e) {
    throw new DataError('SYNTH_FAILED', `could not generate the synthetic dataset in ${cfg.data.path}: ${(e as Error).message}`);
  }
  out.write(`data: generated in ${((performance.now() - t0) / 1000).toFixed(1)} s\n`);
}

/** The split, saved in split/ on first use and reused (and checked) afterwards. */
function resolveSplit(dir: string, ds: Dataset, cfg: RunConfig): { train: number[]; val: number[]; hash: string } {
  const splitDir = join(dir, 'split');
  const saved = readJson<{ hash: string; fingerprint: string; tags: string[] }>(join(splitDir, 'split.json'));
  const index = new Map(ds.names.map((n, i) => [n, i]));
  if (saved && existsSync(join(splitDir, 'train.txt')) && existsSync(join(splitDir, 'val.txt'))) {
    const read = (f: string): string[] => readFileSync(join(splitDir, f), 'utf8').split('\n').filter(Boolean);
    const trainNames = read('train.txt');
    const valNames = read('val.txt');
    const missing = [...trainNames, ...valNames].filter((n) => !index.has(n));
    if (missing.length > 0) throw new DataError('SPLIT_MISMATCH', `the saved split in ${splitDir} names ${missing.length} images that are not in the dataset now (e.g. ${missing.slice(0, 3).join(', ')}): the data changed since this run started.\n  Restore the data, or start a new run folder (exp run FILE --force) to make a new split.`);
    return { train: trainNames.map((n) => index.get(n)!), val: valNames.map((n) => index.get(n)!), hash: saved.hash };
  }
  let s: { train: number[]; val: number[] };
  try {
    s = splitIndices(ds.names.length, cfg.data.split.test_size, cfg.data.split.seed);
  } catch (e) {
    throw new DataError('SPLIT_TOO_SMALL', `${(e as Error).message}; use more images (data.limit) or another data.split.test_size`);
  }
  const trainNames = s.train.map((i) => ds.names[i]!);
  const valNames = s.val.map((i) => ds.names[i]!);
  const hash = splitHash(trainNames, valNames);
  mkdirSync(splitDir, { recursive: true });
  writeFileAtomic(join(splitDir, 'train.txt'), trainNames.join('\n') + '\n');
  writeFileAtomic(join(splitDir, 'val.txt'), valNames.join('\n') + '\n');
  writeJsonAtomic(join(splitDir, 'split.json'), { hash, fingerprint: ds.fingerprint, tags: ds.tags, train: trainNames.length, val: valNames.length, test_size: cfg.data.split.test_size, seed: cfg.data.split.seed });
  return { ...s, hash };
}

/** Trains the run folder `dir`; returns its final status. */
export async function trainRunFolder(dir: string, opts: TrainOptions): Promise<RunRecord> {
  const release = await acquireLock(dir);
  const log = (s: string): void => { opts.out.write(s); appendFileSync(join(dir, 'train.log'), s.replaceAll('\r\x1b[2K', '')); };
  try {
    const cfg = readRunConfig(dir);
    const key = runKey(cfg);
    const prev = readRunRecord(dir);
    if (prev?.status === 'completed' && !opts.force) return prev;
    if (prev?.status === 'completed' && opts.force) {
      // Train from scratch: drop what the finished run produced, keep its config and split.
      for (const f of ['checkpoints', 'summary.json', 'curves.png', 'metrics.jsonl']) rmSync(join(dir, f), { recursive: true, force: true });
    }
    const started = Date.now();
    const record: RunRecord = { key, name: basename(dir), status: 'running', created: prev?.created ?? new Date().toISOString(), started: new Date(started).toISOString(), attempts: (prev?.attempts ?? 0) + 1 };
    const events = new EventLog(dir);
    try {
      return await trainInner(dir, opts, record, events, started, log);
    } catch (e) {
      // Record the failure in the folder and the tracking log before reporting it.
      const reason = (e as Error).message;
      Object.assign(record, { status: 'failed', reason, ended: new Date().toISOString() });
      writeJsonAtomic(join(dir, 'run.json'), record);
      events.append({ type: 'run_ended', status: 'failed', reason });
      throw e;
    }
  } finally {
    release();
  }
}

async function trainInner(dir: string, opts: TrainOptions, record: RunRecord, events: EventLog, started: number, log: (s: string) => void): Promise<RunRecord> {
  const cfg = readRunConfig(dir);
  const key = record.key;
  const sweepDir = dirname(dir);
  const index = readJson<{ points: { dir: string; params: Record<string, unknown> }[]; sweep: string }>(join(sweepDir, 'index.json'));
  const params = index?.points.find((p) => p.dir === basename(dir))?.params ?? {};

  await ensureDataset(cfg, { write: log, isTTY: opts.out.isTTY });
  const backend = await selectBackend(cfg.backend);
  record.backend = backend;
  record.environment = captureEnvironment();
  writeJsonAtomic(join(dir, 'run.json'), record);
  log(`run ${basename(dir)} (key ${key}) on ${backend.name} (${backend.device}, ${backend.threads} thread${backend.threads === 1 ? '' : 's'})\n`);

  const ds = await loadDataset(cfg.data, { cacheDir: opts.cacheDir, onProgress: (m) => log(`data: ${m}\n`) });
  for (const line of describeReport(ds.report)) log(`${line}\n`);
  const split = resolveSplit(dir, ds, cfg);
  writeFileAtomic(join(dir, 'tags.txt'), ds.tags.join('\n') + '\n');
  log(`split: ${split.train.length} train / ${split.val.length} validation (hash ${split.hash})\n`);

  const model = buildModel({ imageSize: cfg.data.image_size, nTags: ds.tags.length, trainableBlocks: cfg.model.trainable_blocks!, head: cfg.model.head, seed: cfg.training.seed });
  const counts = countParams(model);
  let state: LoopState = initialState(cfg);
  const optimizer = makeOptimizer(cfg, state.lr);
  const lastDir = join(dir, 'checkpoints', 'last');
  const bestDir = join(dir, 'checkpoints', 'best');
  const resumed = hasCheckpoint(lastDir);
  if (resumed) {
    state = (await loadCheckpoint(lastDir, model, optimizer)).state;
    log(`resuming from checkpoints/last after epoch ${state.epoch}\n`);
  } else if (cfg.model.weights !== 'none') {
    const source = await resolveWeights(cfg.model.weights);
    const loaded = await loadWeights(model, source);
    log(`weights: ${loaded.loaded.length} layers from ${source.kind === 'none' ? 'none' : source.path}\n`);
  }
  log(`model: VGG16 ${cfg.data.image_size}x${cfg.data.image_size}, trainable blocks [${cfg.model.trainable_blocks!.join(', ')}], ${counts.trainable.toLocaleString('en')} of ${counts.total.toLocaleString('en')} parameters trainable\n`);

  // Bring the derived files in line with the checkpoint: history past it is replayed.
  writeFileAtomic(join(dir, 'metrics.jsonl'), state.history.map((h) => JSON.stringify({ epoch: h.epoch, ...h.metrics, lr: h.lr, seconds: h.seconds })).join('\n') + (state.history.length ? '\n' : ''));
  const logged = new Set(readEvents(dir).filter((e) => e.type === 'epoch').map((e) => (e as { epoch: number }).epoch));
  events.append({ type: 'run_started', key, name: basename(dir), experiment: cfg.name, sweep: index?.sweep ?? basename(sweepDir), params: { ...flatten(cfg), ...Object.fromEntries(Object.entries(params).map(([k, v]) => [`sweep.${k}`, v])) } as Record<string, unknown>, tags: { 'exp.backend': backend.name, 'exp.split_hash': split.hash, 'exp.data_fingerprint': ds.fingerprint }, resumed });
  for (const h of state.history) if (!logged.has(h.epoch)) events.append({ type: 'epoch', epoch: h.epoch, metrics: h.metrics });

  const targetsOf = (idx: readonly number[]): Uint8Array => Uint8Array.from(idx.flatMap((i) => Array.from(ds.targets.subarray(i * ds.tags.length, (i + 1) * ds.tags.length))));
  const baseline = bestConstantBaseline(targetsOf(split.train), targetsOf(split.val), ds.tags.length, cfg.metrics.beta);
  const liveSync = new LiveSync(dir);
  const progress = new Progress({ write: opts.out.write.bind(opts.out), isTTY: opts.out.isTTY }, cfg.training.epochs);
  const title = `${cfg.name} / ${basename(dir)}`;
  const tensorsAtStart = tf.memory().numTensors;
  const tensorCounts: number[] = [];
  const stop: StopReason = await trainLoop(model, optimizer, ds, split, cfg, state, {
    onBatch: (e, b, n, imgs, s) => progress.batch(e, b, n, imgs, s),
    interrupted: opts.interrupted,
    onEpoch: async (r, st, improved) => {
      // best before last: a crash between the two then redoes this epoch, rewriting best.
      if (improved && cfg.checkpoint.save_best) await saveCheckpoint(bestDir, model, optimizer, st);
      if (cfg.checkpoint.save_last) await saveCheckpoint(lastDir, model, optimizer, st);
      appendFileSync(join(dir, 'metrics.jsonl'), JSON.stringify({ epoch: r.epoch, ...r.metrics, lr: r.lr, seconds: r.seconds }) + '\n');
      events.append({ type: 'epoch', epoch: r.epoch, metrics: r.metrics });
      liveSync.kick();
      writeFileAtomic(join(dir, 'curves.png'), await curvesPng(st.history.map((h) => ({ epoch: h.epoch, loss: h.metrics.loss!, val_loss: h.metrics.val_loss!, fbeta: h.metrics.fbeta!, val_fbeta: h.metrics.val_fbeta! })), title, cfg.metrics.beta));
      tensorCounts.push(tf.memory().numTensors);
      progress.epoch(r, cfg.checkpoint.monitor, improved);
      appendFileSync(join(dir, 'train.log'), `epoch ${r.epoch}: ${JSON.stringify({ loss: r.metrics.loss, fbeta: r.metrics.fbeta, val_loss: r.metrics.val_loss, val_fbeta: r.metrics.val_fbeta })}\n`);
    },
  });

  // The recipe's final step: reload the best checkpoint and evaluate it.
  let final: Record<string, number> | null = null;
  if (stop.status === 'completed' && cfg.checkpoint.save_best && hasCheckpoint(bestDir)) {
    await loadCheckpoint(bestDir, model);
    const t0 = performance.now();
    const ev = evaluate(model, ds, split.val, cfg);
    final = { ...metricsOf('val_', ev.loss, ev.fbeta), eval_images_per_second: split.val.length / ((performance.now() - t0) / 1000) };
  }
  const best = state.best ? state.history.find((h) => h.epoch === state.best!.epoch) : undefined;
  const trainIps = state.history.length ? state.history.reduce((a, h) => a + h.trainImagesPerSecond, 0) / state.history.length : null;
  const summary = {
    status: stop.status, reason: stop.reason, key, name: basename(dir), backend: backend.name, device: backend.device,
    epochs_completed: state.epoch, monitor: cfg.checkpoint.monitor, mode: monitorMode(cfg),
    best: best ? { epoch: best.epoch, metrics: best.metrics } : null,
    final, baseline: { constant_top_k: baseline.k, val_fbeta: baseline.fbeta },
    duration_s: (Date.now() - started) / 1000,
    images_per_second: { train: trainIps, eval: final?.eval_images_per_second ?? null },
    tensors: { at_start: tensorsAtStart, after_each_epoch: tensorCounts },
    params: counts, split: { train: split.train.length, val: split.val.length, hash: split.hash }, tags: ds.tags,
  };
  writeJsonAtomic(join(dir, 'summary.json'), summary);
  for (const artifact of ['config.yaml', 'metrics.jsonl', 'summary.json', 'curves.png', 'checkpoints/best']) if (existsSync(join(dir, artifact))) events.append({ type: 'artifact', path: artifact });
  const headline = (prefix: string, m: Record<string, number> | null | undefined): Record<string, number> =>
    Object.fromEntries(['loss', 'fbeta', 'val_loss', 'val_fbeta', 'val_micro_fbeta', 'val_macro_fbeta'].filter((k) => m && k in m).map((k) => [`${prefix}${k}`, m![k]!]));
  events.append({ type: 'run_ended', status: stop.status, reason: stop.reason, summary: {
    best_epoch: best?.epoch ?? null, ...headline('best_', best?.metrics), ...headline('final_', final),
    baseline_val_fbeta: baseline.fbeta, baseline_top_k: baseline.k, duration_s: summary.duration_s, train_images_per_second: trainIps,
  } });
  await liveSync.flush();
  Object.assign(record, { status: stop.status, reason: stop.reason, ended: new Date().toISOString() });
  writeJsonAtomic(join(dir, 'run.json'), record);
  log(`${stop.status}: ${stop.reason}${best ? `; best epoch ${best.epoch}: val_loss ${best.metrics.val_loss!.toFixed(4)}, val_fbeta ${best.metrics.val_fbeta!.toFixed(4)}` : ''} (constant baseline val_fbeta ${baseline.fbeta.toFixed(4)}, top-${baseline.k} tags)\n`);
  model.dispose();
  optimizer.dispose();
  return record;
}
