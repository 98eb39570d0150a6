/**
 * Training's side of the shared feature cache (data/feature-cache.ts): the frozen front's output
 * for each batch, read from the cache where an entry exists and computed (once, by whichever
 * process claims it first) where not. Views are the dihedral group's 8 elements: a drawn
 * (flipH, flipV, quarter turns) maps to one of them, and an entry is computed with that
 * element's inverse map, which is the drawn one exactly, so the features are those the
 * on-the-fly path would compute. A continuous rotation has no finite set of views: then only
 * validation (never augmented) is served.
 */
import * as tf from '@tensorflow/tfjs';
import { hostname } from 'node:os';
import type { RunConfig } from '../config/normalise.js';
import type { Dataset } from '../data/planet.js';
import type { BackendInfo } from '../backend/types.js';
import { applyAugment, inverseAffine, type AugmentParams } from '../data/augment.js';
import { preprocess } from '../data/preprocess.js';
import {
  claimEntry,
  entryPath,
  featureCacheRoot,
  keyOf,
  openKey,
  readEntry,
  releaseClaim,
  writeEntry,
  type FeatureDtype,
  type FeatureKeyParts,
} from '../data/feature-cache.js';
import { roundToFloat16 } from '../data/float16.js';
import { boundCache } from '../data/feature-cache-gc.js';
import { pixelBatch, targetsOf } from '../core/batches.js';
import type { SplitModel } from '../model/frozen.js';
import type { BaseRef } from '../core/checkpoint.js';
import type { FeatureCacheRecord } from '../store/types.js';
import type { LoopHooks } from './loop.js';
import { accumulate, emptyCounts, report } from '../core/metrics.js';
import { meanBce } from '../core/loss.js';
import { evalBatchSize } from '../core/predict.js';
import type { Evaluation } from '../core/evaluate.js';

/** The 8 views as the draws that make them: quarter turns 0-3, without and with a horizontal flip. */
const VIEWS: AugmentParams[] = [0, 1, 2, 3].flatMap((q) => [false, true].map((flipH) => ({ angle: 0, flipH, flipV: false, quarterTurns: q })));
const linear = (p: AugmentParams): string => inverseAffine(p, 2).slice(0, 2).concat(inverseAffine(p, 2).slice(3, 5)).join(',');
const VIEW_OF = new Map(VIEWS.map((p, i) => [linear(p), i]));

/** The view (0-7) of a drawn augmentation without rotation: its inverse map's integer matrix. */
export function viewOf(p: AugmentParams): number {
  const v = VIEW_OF.get(linear({ ...p, angle: 0 }));
  if (v === undefined || p.angle !== 0) throw new Error(`no dihedral view for ${JSON.stringify(p)}`);
  return v;
}

/** What run.json records. */
export type FeatureCacheStats = FeatureCacheRecord;

export interface FeatureSource {
  /** The training batch's features, or undefined when training is not served (continuous rotation). */
  train(images: readonly number[], params: readonly AugmentParams[]): Promise<tf.Tensor4D | undefined>;
  val(images: readonly number[]): Promise<tf.Tensor4D>;
  stats(): FeatureCacheStats;
}

export interface FeatureSourceInit {
  cfg: RunConfig;
  ds: Dataset;
  splitHash: string;
  parts: SplitModel;
  base: BaseRef;
  backend: BackendInfo;
  log: (line: string) => void;
  env: NodeJS.ProcessEnv;
}

/** The run's feature source, or undefined (said in the log) when the cache is off or cannot serve this model. */
export function openFeatureSource(init: FeatureSourceInit): FeatureSource | undefined {
  const { cfg, parts, log } = init;
  if (!cfg.feature_cache.enabled) return void log('feature cache: off (feature_cache.enabled: false)\n');
  if (parts.frozenLayers === 0) return void log('feature cache: not used: the model has no frozen front (model.frozen_blocks: 0)\n');
  const size = cfg.data.image_size;
  const shape = tf.tidy(() => parts.frozen(tf.zeros([1, size, size, 3])).shape.slice(1));
  const keyParts: FeatureKeyParts = {
    version: 1,
    fingerprint: init.ds.fingerprint,
    split: init.splitHash,
    image_size: size,
    resize: cfg.data.resize,
    preprocessing: cfg.model.preprocessing,
    weights: init.base.weights === 'file' ? init.base.md5 : `random:${init.base.seed}`,
    frozen_layers: parts.frozenLayers,
    trainable_blocks: cfg.model.trainable_blocks,
    backend: init.backend.name,
    dtype: cfg.feature_cache.dtype,
    shape,
  };
  const key = keyOf(keyParts);
  const root = featureCacheRoot(init.env);
  const trainServed = cfg.augmentation.rotation_range === 0;
  try {
    openKey(root, key, keyParts, trainServed ? VIEWS.map((_, i) => i) : [0]);
  } catch (e) {
    return void log(`feature cache: not used: cannot write ${root} (${(e as Error).message}); the frozen blocks run every batch\n`);
  }
  const what = trainServed
    ? 'training and validation features'
    : `validation features only: augmentation.rotation_range ${cfg.augmentation.rotation_range} is a continuous rotation, whose views cannot be stored (use dihedral instead to cache training too)`;
  log(`feature cache: key ${key} in ${root}: ${what}\n`);
  return new CachedFeatures(init, root, key, shape, trainServed);
}

/** One (image, view) slot of a batch. */
interface Want {
  image: number;
  view: number;
  path: string;
}

class CachedFeatures implements FeatureSource {
  private readonly len: number;
  private readonly dtype: FeatureDtype;
  private storing = true;
  private readonly maxBytes: number;
  private bytes: number;
  private readonly s: FeatureCacheStats;
  private damagedSaid = 0;
  /** Entries this process holds a claim on (only these are released by it). */
  private readonly claimed = new Set<string>();

  constructor(
    private readonly init: FeatureSourceInit,
    private readonly root: string,
    key: string,
    private readonly shape: number[],
    private readonly trainServed: boolean,
  ) {
    this.len = shape.reduce((a, b) => a * b, 1);
    this.dtype = init.cfg.feature_cache.dtype;
    this.maxBytes = init.cfg.feature_cache.max_gb * 1e9;
    const gc = boundCache(root, this.maxBytes);
    this.bytes = gc.bytesAfter;
    if (gc.removed > 0) init.log(`feature cache: over max_gb (${(gc.bytesBefore / 1e9).toFixed(2)} GB): removed ${gc.removed} least recently used entries\n`);
    this.s = { key, dir: root, trained_from_cache: trainServed, validation_from_cache: true, computed: 0, read: 0, stored: 0, damaged: 0, fill_seconds: 0 };
  }

  stats = (): FeatureCacheStats => ({ ...this.s, fill_seconds: Math.round(this.s.fill_seconds * 1000) / 1000 });

  async train(images: readonly number[], params: readonly AugmentParams[]): Promise<tf.Tensor4D | undefined> {
    if (!this.trainServed) return undefined;
    return this.fetch(images.map((image, i) => this.want(image, viewOf(params[i]!))));
  }

  val = (images: readonly number[]): Promise<tf.Tensor4D> => this.fetch(images.map((image) => this.want(image, 0)));

  private want = (image: number, view: number): Want => ({ image, view, path: entryPath(this.root, this.s.key, view, image) });

  /** Reads what exists, computes what this process claims, and waits for entries another process is computing. */
  private async fetch(wants: Want[]): Promise<tf.Tensor4D> {
    const out = new Float32Array(wants.length * this.len);
    const slot = (i: number): Float32Array => out.subarray(i * this.len, (i + 1) * this.len);
    let pending = wants.map((_, i) => i);
    let t0 = 0;
    while (pending.length > 0) {
      const mine: number[] = [];
      const waiting: number[] = [];
      for (const i of pending) {
        const w = wants[i]!;
        const r = readEntry(w.path, w.image, w.view, slot(i), this.dtype);
        if (r.ok) this.s.read++;
        else {
          if (!r.missing) this.damaged(w.path, r.reason);
          if (!this.claim(w.path)) waiting.push(i);
          // Another process may have stored it between the read and the claim: read it again under the claim.
          else if (this.claimed.has(w.path) && readEntry(w.path, w.image, w.view, slot(i), this.dtype).ok) {
            this.s.read++;
            this.claimed.delete(w.path);
            releaseClaim(w.path);
          } else mine.push(i);
        }
      }
      if (mine.length === 0 && waiting.length === 0) break;
      t0 ||= performance.now();
      if (mine.length > 0)
        await this.compute(
          mine.map((i) => wants[i]!),
          mine.map(slot),
        );
      pending = waiting;
      // Another process is computing these: poll for its entries (or for its claim to go, when it could not store them).
      if (waiting.length > 0) await new Promise((r) => setTimeout(r, 20));
    }
    if (t0) this.s.fill_seconds += (performance.now() - t0) / 1000;
    return tf.tensor4d(out, [wants.length, ...this.shape] as [number, number, number, number]);
  }

  /** Whether this process computes the entry: it claimed it, or it stores nothing any more. */
  private claim(path: string): boolean {
    if (!this.storing) return true;
    try {
      const got = claimEntry(path);
      if (got) this.claimed.add(path);
      return got;
    } catch (e) {
      this.stopStoring(path, e);
      return true;
    }
  }

  private damaged(path: string, reason: string): void {
    this.s.damaged++;
    if (this.damagedSaid++ < 5) this.init.log(`feature cache: entry ${path} is damaged (${reason}): it is recomputed\n`);
  }

  private stopStoring(path: string, e: unknown): void {
    if (!this.storing) return;
    this.storing = false;
    this.init.log(
      `feature cache: cannot store ${path} (${(e as Error).message}); from here this run computes the features it does not find and stores none (entries already stored are still read; nothing half-written is ever read)\n`,
    );
  }

  /** Runs the frozen front on these (image, view) pairs, fills their slots and stores them. */
  private async compute(wants: Want[], slots: Float32Array[]): Promise<void> {
    const { cfg, ds, parts } = this.init;
    try {
      const x = pixelBatch(
        ds.pixels,
        ds.size,
        wants.map((w) => w.image),
      );
      const feats = tf.tidy(() =>
        parts.frozen(
          preprocess(
            applyAugment(
              x,
              wants.map((w) => VIEWS[w.view]!),
              cfg.augmentation.fill_mode,
            ),
            cfg.model.preprocessing,
          ),
        ),
      );
      x.dispose();
      const data = (await feats.data()) as Float32Array;
      feats.dispose();
      this.s.computed += wants.length;
      wants.forEach((w, i) => {
        const one = data.subarray(i * this.len, (i + 1) * this.len);
        slots[i]!.set(one);
        // What this run computes is what a later read gives back, so the run does not depend on who filled the cache.
        if (this.dtype === 'float16') roundToFloat16(slots[i]!);
        if (this.storing) this.store(w, slots[i]!);
      });
    } finally {
      for (const w of wants) if (this.claimed.delete(w.path)) releaseClaim(w.path);
    }
  }

  private store(w: Want, data: Float32Array): void {
    try {
      const added = writeEntry(w.path, w.image, w.view, data, this.dtype);
      if (added > 0) this.s.stored++;
      this.bytes += added;
    } catch (e) {
      this.stopStoring(w.path, e);
      return;
    }
    if (this.bytes > this.maxBytes) {
      const gc = boundCache(this.root, this.maxBytes);
      this.bytes = gc.bytesAfter;
      this.init.log(
        `feature cache: reached max_gb ${this.init.cfg.feature_cache.max_gb} on ${hostname()}: removed ${gc.removed} least recently used entries\n`,
      );
    }
  }
}

/** core/evaluate's evaluate() with the frozen front's output read from the cache: the same batches, probabilities, loss and F-beta. */
export async function evaluateFromFeatures(
  parts: SplitModel,
  source: FeatureSource,
  ds: Dataset,
  indices: readonly number[],
  cfg: RunConfig,
): Promise<Evaluation> {
  const nTags = ds.tags.length;
  const batchSize = evalBatchSize(cfg);
  const probs = new Float32Array(indices.length * nTags);
  for (let off = 0; off < indices.length; off += batchSize) {
    const feats = await source.val(indices.slice(off, off + batchSize));
    const p = tf.tidy(() => parts.rest(feats, false));
    probs.set((await p.data()) as Float32Array, off * nTags);
    tf.dispose([feats, p]);
  }
  const targets = targetsOf(ds, indices);
  const counts = emptyCounts(nTags);
  accumulate(counts, probs, targets, nTags, cfg.metrics.beta, cfg.metrics.threshold);
  return { loss: meanBce(probs, targets, nTags, batchSize), fbeta: report(counts, ds.tags, cfg.metrics.beta), probs, targets };
}

/** The loop's hooks that read the frozen front's output from the cache (none without a source). */
export function featureHooks(
  source: FeatureSource | undefined,
  parts: SplitModel,
  ds: Dataset,
  val: readonly number[],
  cfg: RunConfig,
): Pick<LoopHooks, 'frozenFeatures' | 'evaluateVal'> {
  if (!source) return {};
  return { frozenFeatures: (images, params) => source.train(images, params), evaluateVal: () => evaluateFromFeatures(parts, source, ds, val, cfg) };
}
