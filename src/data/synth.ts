/**
 * A synthetic Planet-style dataset, so that the whole pipeline (and the quickstart) runs
 * with no download: `train_v2.csv` + `train-jpg/train_<i>.jpg`, the same layout as Kaggle's.
 *
 * Labels follow the real rules (one weather tag each, cloudy alone) and roughly the real
 * frequencies and co-occurrences, with rare tags boosted so that a small run sees enough
 * of each to learn. Every tag paints its own large, colourful signature, because the
 * quickstart trains VGG16 from random weights on chips downscaled to 32x32: detail finer
 * than about 1/32 of the chip would vanish.
 *
 * Image i depends only on (seed, i): a fresh PRNG per image keeps the output identical
 * whatever the concurrency, and makes a smaller dataset a prefix of a larger one.
 */
import { existsSync, mkdirSync, readdirSync, rmSync, statSync } from 'node:fs';
import { join } from 'node:path';
import seedrandom from 'seedrandom';
import sharp from 'sharp';
import { DataError } from '../errors.js';
import { writeFileAtomic, writeJsonAtomic } from '../util/fsx.js';
import { TAGS, type Tag, type WeatherTag } from './tags.js';

/** Random numbers in [0, 1). */
export type Rng = () => number;

export interface SynthOptions {
  /** Folder to write `train_v2.csv` and `train-jpg/` into (created if missing; files of an earlier dataset there are replaced). */
  outDir: string;
  count: number;
  seed: number;
  /** Side of the square JPEGs in pixels (Planet's are 256). */
  size?: number;
  /** JPEG quality, 1-100. */
  quality?: number;
  /** Images in flight at once: rendering runs on the main thread, JPEG encoding on libuv's pool. */
  concurrency?: number;
  onProgress?: (done: number, total: number) => void;
  /**
   * Allow writing into an image folder that holds files synthesize did not write (no
   * `synth.json` next to it). Off by default, so that a real dataset is never overwritten.
   */
  overwrite?: boolean;
}

export interface SynthResult {
  count: number;
  tagCounts: Record<Tag, number>;
  /** Every file written: the CSV, synth.json, then the JPEGs in image order. */
  files: string[];
}

/** The PRNG that decides image `index`'s labels and pixels. */
export function imageRng(seed: number, index: number): seedrandom.PRNG {
  return seedrandom.alea(`exp-synth:${seed}:${index}`);
}

// Weather first, then land tags given the weather. Tuned (see test/data/synth.test.ts) so
// common tags keep the real order and every tag is on at least ~4% of the chips.
const WEATHER_P: readonly [WeatherTag, number][] = [['clear', 0.66], ['partly_cloudy', 0.18], ['haze', 0.09], ['cloudy', 0.07]];
/** Chance of each rare tag on a chip that is not cloudy (the real rate is 0.25-0.85%). */
const RARE_P = 0.045;

/** Draws one chip's tags (sorted alphabetically, as Kaggle's CSV has them). */
export function sampleTags(rng: Rng): Tag[] {
  const p = (x: number): boolean => rng() < x;
  let u = rng();
  const weather = WEATHER_P.find(([, w]) => (u -= w) < 0)?.[0] ?? 'clear';
  if (weather === 'cloudy') return ['cloudy'];
  const tags = new Set<Tag>([weather]);
  const add = (t: Tag, chance = 1): void => { if (p(chance)) tags.add(t); };
  add('primary', 0.95);
  const agriculture = p(0.33);
  if (agriculture) tags.add('agriculture');
  add('cultivation', agriculture ? 0.3 : 0.03);
  const road = p(agriculture ? 0.45 : 0.1);
  if (road) tags.add('road');
  add('habitation', road ? 0.42 : agriculture ? 0.06 : 0.02);
  add('water', 0.19);
  add('bare_ground', 0.03);
  // Rare tags bring their usual neighbours: mines dig bare ground and ponds, logging and
  // blow-down happen in forest, burns at the edge of farmland.
  if (p(RARE_P)) { tags.add('artisinal_mine'); add('bare_ground', 0.5); add('water', 0.6); }
  if (p(RARE_P)) { tags.add('conventional_mine'); add('bare_ground', 0.3); add('road', 0.5); }
  if (p(RARE_P)) { tags.add('selective_logging'); tags.add('primary'); add('road', 0.3); }
  if (p(RARE_P)) { tags.add('blooming'); tags.add('primary'); }
  if (p(RARE_P)) { tags.add('slash_burn'); add('agriculture', 0.4); }
  if (p(RARE_P)) { tags.add('blow_down'); tags.add('primary'); }
  return TAGS.filter((t) => tags.has(t));
}

/** The labels `synthesize` would write for (count, seed), without rendering anything. */
export function synthLabels(count: number, seed: number): Tag[][] {
  return Array.from({ length: count }, (_, i) => sampleTags(imageRng(seed, i)));
}

type RGB = readonly [number, number, number];
/** The colours each tag paints with (one RGB, or a list to choose from). */
const PALETTE = {
  forest: [34, 88, 42], scrub: [128, 122, 90], fields: [[205, 200, 110], [214, 188, 124], [176, 204, 96]],
  cultivation: [196, 160, 116], yard: [172, 160, 150], house: [244, 242, 234], roof: [198, 72, 52],
  road: [222, 212, 190], water: [28, 68, 142], bare: [158, 96, 56], bloom: [[232, 108, 208], [172, 92, 226]],
  logging: [104, 56, 32], burn: [24, 20, 18], smoke: [160, 160, 166], blowdown: [150, 228, 150],
  pit: [230, 138, 40], pool: [60, 206, 196], mineA: [148, 148, 154], mineB: [196, 196, 202],
  haze: [188, 190, 200], cloud: [246, 246, 248],
} as const satisfies Record<string, RGB | readonly RGB[]>;

/** Float RGB canvas, row-major, 3 floats per pixel. Shapes are filled row span by row span (fast). */
class Canvas {
  readonly px: Float32Array;
  constructor(readonly size: number, readonly rng: Rng) { this.px = new Float32Array(size * size * 3); }

  uni(a: number, b: number): number { return a + (b - a) * this.rng(); }
  int(a: number, b: number): number { return Math.floor(this.uni(a, b + 1)); }
  /** A paint colour, jittered per use so no two chips share exact colours. */
  colour(c: RGB | readonly RGB[], jitter = 10): RGB {
    const base = (Array.isArray(c[0]) ? (c as readonly RGB[])[Math.floor(this.rng() * c.length)] : c) as RGB;
    const d = this.uni(-jitter, jitter);
    return [base[0] + d + this.uni(-4, 4), base[1] + d + this.uni(-4, 4), base[2] + d + this.uni(-4, 4)];
  }

  /** Blends `col` with weight `k` into the pixels of row y whose centres lie in [x0, x1]. */
  span(y: number, x0: number, x1: number, col: RGB, k: number): void {
    const xa = Math.max(0, Math.ceil(x0 - 0.5)), xb = Math.min(this.size - 1, Math.floor(x1 - 0.5));
    const px = this.px, r = col[0], g = col[1], b = col[2];
    for (let i = (y * this.size + xa) * 3, e = (y * this.size + xb) * 3; i <= e; i += 3) {
      px[i] += (r - px[i]!) * k; px[i + 1] += (g - px[i + 1]!) * k; px[i + 2] += (b - px[i + 2]!) * k;
    }
  }

  /** Rows whose centres lie in [y0, y1], clipped to the canvas. */
  rows(y0: number, y1: number): [number, number] {
    return [Math.max(0, Math.ceil(y0 - 0.5)), Math.min(this.size - 1, Math.floor(y1 - 0.5))];
  }

  disc(cx: number, cy: number, r: number, col: RGB, alpha = 1): void {
    const [ya, yb] = this.rows(cy - r, cy + r);
    for (let y = ya; y <= yb; y++) {
      const h = Math.sqrt(Math.max(0, r * r - (y + 0.5 - cy) ** 2));
      this.span(y, cx - h, cx + h, col, alpha);
    }
  }

  /** An irregular patch: a few overlapping discs around a centre. */
  blob(cx: number, cy: number, r: number, col: RGB, alpha = 1): void {
    for (let k = this.int(3, 6); k > 0; k--) {
      const a = this.uni(0, 2 * Math.PI), d = this.uni(0, 0.55 * r);
      this.disc(cx + d * Math.cos(a), cy + d * Math.sin(a), r * this.uni(0.4, 0.75), col, alpha);
    }
  }

  /**
   * A w x h rectangle turned by `angle`; `stripes` > 0 darkens every other band of that
   * period across its width (plough lines, fallen trees).
   */
  rect(cx: number, cy: number, w: number, h: number, angle: number, col: RGB, stripes = 0, depth = 0.12): void {
    const cos = Math.cos(angle), sin = Math.sin(angle), ext = (Math.abs(w * cos) + Math.abs(h * sin) + Math.abs(w * sin) + Math.abs(h * cos)) / 2;
    const dark: RGB = [col[0] * (1 - depth), col[1] * (1 - depth), col[2] * (1 - depth)];
    const [ya, yb] = this.rows(cy - ext, cy + ext);
    for (let y = ya; y <= yb; y++) {
      const dy = y + 0.5 - cy;
      // Inside means |cos*dx + sin*dy| <= w/2 and |cos*dy - sin*dx| <= h/2: two intervals of dx.
      let lo = -Infinity, hi = Infinity;
      for (const [a, b, lim] of [[cos, sin * dy, w / 2], [-sin, cos * dy, h / 2]] as const) {
        if (Math.abs(a) < 1e-9) { if (Math.abs(b) > lim) lo = Infinity; continue; }
        const p = (-lim - b) / a, q = (lim - b) / a;
        lo = Math.max(lo, Math.min(p, q)); hi = Math.min(hi, Math.max(p, q));
      }
      if (lo > hi) continue;
      if (stripes <= 0) { this.span(y, cx + lo, cx + hi, col, 1); continue; }
      for (let x = Math.max(0, Math.ceil(cx + lo - 0.5)); x <= Math.min(this.size - 1, Math.floor(cx + hi - 0.5)); x++) {
        const u = ((x + 0.5 - cx) * cos + dy * sin) / stripes;
        this.span(y, x + 0.5, x + 0.5, u - Math.floor(u) < 0.5 ? dark : col, 1);
      }
    }
  }

  /** A thick line through the points, stamped as discs (round joins, any direction). */
  stroke(pts: readonly (readonly [number, number])[], width: number, col: RGB): void {
    const r = width / 2, step = Math.max(1, r / 2);
    for (let k = 1; k < pts.length; k++) {
      const [ax, ay] = pts[k - 1]!, [bx, by] = pts[k]!;
      const n = Math.ceil(Math.hypot(bx - ax, by - ay) / step);
      for (let j = 0; j <= n; j++) this.disc(ax + ((bx - ax) * j) / n, ay + ((by - ay) * j) / n, r, col);
    }
  }

  /** A wandering path from outside one edge across the chip, `n` segments. */
  path(n: number, wander: number): [number, number][] {
    const s = this.size, a = this.uni(0, 2 * Math.PI);
    let x = s / 2 - Math.cos(a) * s * 0.75 + this.uni(-0.3, 0.3) * s, y = s / 2 - Math.sin(a) * s * 0.75 + this.uni(-0.3, 0.3) * s;
    let dir = a;
    const pts: [number, number][] = [[x, y]];
    for (let k = 0; k < n; k++) {
      dir += this.uni(-wander, wander);
      x += Math.cos(dir) * (1.6 * s) / n; y += Math.sin(dir) * (1.6 * s) / n;
      pts.push([x, y]);
    }
    return pts;
  }

  /** Soft-edged white cover: raises `cover` (0-1.6) inside a disc, fading out at its edge. */
  puff(cover: Float32Array, cx: number, cy: number, r: number, texture: Float32Array): void {
    const s = this.size, [ya, yb] = this.rows(cy - r, cy + r);
    for (let y = ya; y <= yb; y++) {
      const dy = y + 0.5 - cy;
      for (let x = Math.max(0, Math.ceil(cx - r - 0.5)); x <= Math.min(s - 1, Math.floor(cx + r - 0.5)); x++) {
        const p = y * s + x, d = Math.sqrt((x + 0.5 - cx) ** 2 + dy * dy);
        const a = 1.6 * (1 - d / r) + 0.2 * texture[p]!;
        if (a > cover[p]!) cover[p] = a;
      }
    }
  }
}

/** Smooth random field in about [-1, 1] at `cells` cells across: value noise, bilinear. */
function valueNoise(size: number, cells: number, rng: Rng): Float32Array {
  const g = cells + 1, grid = new Float32Array(g * g), out = new Float32Array(size * size), row = new Float32Array(g);
  for (let i = 0; i < grid.length; i++) grid[i] = rng() * 2 - 1;
  const ix = new Int32Array(size), fx = new Float32Array(size);
  for (let x = 0; x < size; x++) { const t = ((x + 0.5) * cells) / size; ix[x] = Math.min(cells - 1, Math.floor(t)); fx[x] = t - ix[x]!; }
  for (let y = 0; y < size; y++) {
    // Interpolate the two grid rows once per pixel row; then each pixel is one lerp.
    const r0 = ix[y]! * g, fy = fx[y]!;
    for (let j = 0; j < g; j++) row[j] = grid[r0 + j]! + (grid[r0 + g + j]! - grid[r0 + j]!) * fy;
    for (let x = 0, o = y * size; x < size; x++) {
      const c = ix[x]!;
      out[o + x] = row[c]! + (row[c + 1]! - row[c]!) * fx[x]!;
    }
  }
  return out;
}

const groundTextures = new Map<number, Float32Array>();
/**
 * Ground texture shared by every chip of one size: a 2s x 2s tile of blotches (~5 px,
 * canopy scale) over broad swells (~s/5), built once from a fixed seed; each chip reads
 * its own window of it. Fresh noise per chip cost more than all the shapes together.
 */
function groundTexture(size: number): Float32Array {
  let t = groundTextures.get(size);
  if (!t) {
    const rng = seedrandom.alea('exp-synth:ground'), s2 = 2 * size;
    const fine = valueNoise(s2, Math.max(8, Math.round(s2 / 5)), rng), coarse = valueNoise(s2, 10, rng);
    t = fine.map((f, i) => 0.55 * f + 0.45 * coarse[i]!);
    groundTextures.set(size, t);
  }
  return t;
}

const paintLand: Partial<Record<Tag, (c: Canvas) => void>> = {
  bare_ground: (c) => { for (let k = c.int(1, 3); k > 0; k--) c.blob(c.uni(0, c.size), c.uni(0, c.size), c.size * c.uni(0.1, 0.2), c.colour(PALETTE.bare)); },
  agriculture: (c) => {
    const s = c.size, angle = c.uni(-0.4, 0.4);
    for (let k = c.int(2, 5); k > 0; k--) c.rect(c.uni(0.1, 0.9) * s, c.uni(0.1, 0.9) * s, c.uni(0.25, 0.45) * s, c.uni(0.2, 0.4) * s, angle + c.uni(-0.1, 0.1), c.colour(PALETTE.fields, 12), s * c.uni(0.03, 0.06));
  },
  cultivation: (c) => { for (let k = c.int(4, 8); k > 0; k--) c.blob(c.uni(0, c.size), c.uni(0, c.size), c.size * c.uni(0.06, 0.11), c.colour(PALETTE.cultivation)); },
  blow_down: (c) => {
    const s = c.size;
    c.rect(c.uni(0.25, 0.75) * s, c.uni(0.25, 0.75) * s, c.uni(0.3, 0.45) * s, c.uni(0.2, 0.35) * s, c.uni(0, Math.PI), c.colour(PALETTE.blowdown), s * 0.04, 0.25);
  },
  conventional_mine: (c) => {
    const s = c.size, cx = c.uni(0.3, 0.7) * s, cy = c.uni(0.3, 0.7) * s, r = c.uni(0.25, 0.35) * s, a = c.colour(PALETTE.mineA), b = c.colour(PALETTE.mineB);
    // Terraces: concentric rings, widest first so the inner ones stay visible.
    for (let k = 5; k > 0; k--) c.disc(cx, cy, (r * k) / 5, k % 2 ? a : b);
  },
  artisinal_mine: (c) => {
    const s = c.size, cx = c.uni(0.25, 0.75) * s, cy = c.uni(0.25, 0.75) * s;
    for (let k = c.int(2, 4); k > 0; k--) {
      const x = cx + c.uni(-0.2, 0.2) * s, y = cy + c.uni(-0.2, 0.2) * s;
      c.blob(x, y, s * c.uni(0.08, 0.13), c.colour(PALETTE.pit));
      c.disc(x + c.uni(-0.03, 0.03) * s, y + c.uni(-0.03, 0.03) * s, s * c.uni(0.035, 0.06), c.colour(PALETTE.pool));
    }
  },
  water: (c) => {
    if (c.rng() < 0.75) c.stroke(c.path(12, 0.5), c.size * c.uni(0.06, 0.1), c.colour(PALETTE.water));
    else c.blob(c.uni(0.2, 0.8) * c.size, c.uni(0.2, 0.8) * c.size, c.size * c.uni(0.15, 0.25), c.colour(PALETTE.water));
  },
  selective_logging: (c) => {
    const s = c.size, col = c.colour(PALETTE.logging);
    for (let k = c.int(2, 3); k > 0; k--) {
      const trunk = c.path(6, 0.6);
      c.stroke(trunk, s * 0.03, col);
      // Short spurs off the track, each ending in a small clearing.
      for (const [x, y] of trunk.filter((_, j) => j % 2 === 1)) {
        const a = c.uni(0, 2 * Math.PI), l = c.uni(0.08, 0.15) * s, end: [number, number] = [x + Math.cos(a) * l, y + Math.sin(a) * l];
        c.stroke([[x, y], end], s * 0.025, col);
        c.disc(end[0], end[1], s * 0.03, col);
      }
    }
  },
  slash_burn: (c) => {
    const s = c.size, wind = c.uni(0, 2 * Math.PI);
    for (let k = c.int(1, 3); k > 0; k--) {
      const x = c.uni(0.15, 0.85) * s, y = c.uni(0.15, 0.85) * s, r = s * c.uni(0.08, 0.13);
      c.blob(x, y, r, c.colour(PALETTE.burn, 6));
      // A thin grey plume drifting downwind: greyer and fainter than a cloud.
      for (let j = 1; j <= 4; j++) c.disc(x + Math.cos(wind) * r * j * 0.8, y + Math.sin(wind) * r * j * 0.8, r * (0.5 + 0.2 * j), c.colour(PALETTE.smoke, 6), 0.3);
    }
  },
  road: (c) => { for (let k = c.int(1, 2); k > 0; k--) c.stroke(c.path(c.int(2, 5), 0.35), c.size * c.uni(0.035, 0.05), c.colour(PALETTE.road)); },
  habitation: (c) => {
    const s = c.size;
    for (let k = c.int(1, 2); k > 0; k--) {
      const cx = c.uni(0.2, 0.8) * s, cy = c.uni(0.2, 0.8) * s, r = c.uni(0.12, 0.2) * s;
      c.disc(cx, cy, r, c.colour(PALETTE.yard));
      // Houses ~1.5 px at 32x32 once downscaled: smaller ones would blur into the yard.
      for (let h = c.int(12, 20); h > 0; h--) {
        const a = c.uni(0, 2 * Math.PI), d = r * Math.sqrt(c.rng()) * 0.85, w = s * c.uni(0.04, 0.06);
        c.rect(cx + d * Math.cos(a), cy + d * Math.sin(a), w, w * c.uni(0.8, 1.4), c.uni(0, 1), c.colour(c.rng() < 0.4 ? PALETTE.house : PALETTE.roof));
      }
    }
  },
  blooming: (c) => {
    const s = c.size, cx = c.uni(0.25, 0.75) * s, cy = c.uni(0.25, 0.75) * s, spread = c.uni(0.2, 0.3) * s;
    for (let k = c.int(30, 55); k > 0; k--) c.disc(cx + c.uni(-1, 1) * spread, cy + c.uni(-1, 1) * spread, s * c.uni(0.02, 0.035), c.colour(PALETTE.bloom, 14));
  },
};
/** Paint order: large ground cover first, then smaller features on top, so that few are hidden. */
const LAND_ORDER: readonly Tag[] = ['agriculture', 'conventional_mine', 'bare_ground', 'cultivation', 'blow_down', 'artisinal_mine',
  'water', 'selective_logging', 'slash_burn', 'road', 'habitation', 'blooming'];

/**
 * Renders one chip with the given tags: `size` x `size` RGB, row-major, 3 bytes per pixel.
 * Deterministic for the same tags, size and PRNG state.
 */
export function renderChip(tags: readonly Tag[], size: number, rng: Rng): Uint8Array {
  const c = new Canvas(size, rng), has = new Set(tags), px = c.px;
  // Ground: dense, blotchy canopy for primary forest, dull scrub otherwise.
  const forest = has.has('primary') || (has.has('cloudy') && rng() < 0.7);
  const ground = c.colour(forest ? PALETTE.forest : PALETTE.scrub, 8);
  const tex = groundTexture(size), ox = c.int(0, size - 1), oy = c.int(0, size - 1), amp = forest ? 28 : 22, [g0, g1, g2] = ground;
  for (let y = 0, i = 0; y < size; y++) {
    for (let q = (y + oy) * 2 * size + ox, e = q + size; q < e; q++, i += 3) {
      const t = amp * tex[q]!;
      px[i] = g0 + t * 0.7; px[i + 1] = g1 + t; px[i + 2] = g2 + t * 0.6;
    }
  }
  for (const t of LAND_ORDER) if (has.has(t)) paintLand[t]!(c);

  // Weather, as a veil (haze) or a white cover (clouds) over the ground, then sensor noise.
  const cloud = has.has('cloudy') || has.has('partly_cloudy') ? new Float32Array(size * size) : undefined;
  if (cloud && has.has('cloudy')) {
    const n = valueNoise(size, 4, rng), base = c.uni(0.85, 1.05);
    for (let p = 0; p < cloud.length; p++) cloud[p] = base + 0.3 * n[p]!;
  } else if (cloud) {
    const n = valueNoise(size, 6, rng);
    for (let k = c.int(1, 3); k > 0; k--) {
      const cx = c.uni(0, size), cy = c.uni(0, size), r = size * c.uni(0.12, 0.22);
      for (let j = c.int(3, 6); j > 0; j--) c.puff(cloud, cx + c.uni(-r, r), cy + c.uni(-r, r), r * c.uni(0.5, 0.9), n);
    }
  }
  const haze = has.has('haze') ? c.uni(0.45, 0.6) : 0, veil = c.colour(PALETTE.haze, 8), cloudCol = c.colour(PALETTE.cloud, 6);
  const contrast = has.has('clear') ? c.uni(1.05, 1.2) : c.uni(0.9, 1.05), gain = c.uni(0.9, 1.1), noiseAmp = c.uni(4, 9) / 2 ** 31;
  // contrast about mid-grey, gain, then the haze veil, folded into v = px * k + base[ch].
  const k = contrast * gain * (1 - haze), base = veil.map((v) => 110 * (1 - contrast) * gain * (1 - haze) + v * haze);
  const out = new Uint8ClampedArray(size * size * 3); // clamps and rounds for us
  const [b0, b1, b2] = base as [number, number, number], [c0, c1, c2] = cloudCol;
  let bits = Math.floor(rng() * 2 ** 31) | 1; // xorshift32: per-pixel noise must be cheap
  // Two copies of the hot loop, because testing for clouds per pixel doubled its cost.
  if (!cloud) {
    for (let i = 0; i < out.length; i += 3) {
      bits ^= bits << 13; bits ^= bits >>> 17; bits ^= bits << 5;
      const n = bits * noiseAmp;
      out[i] = px[i]! * k + b0 + n; out[i + 1] = px[i + 1]! * k + b1 + n; out[i + 2] = px[i + 2]! * k + b2 + n;
    }
  } else {
    for (let p = 0, i = 0; i < out.length; p++, i += 3) {
      bits ^= bits << 13; bits ^= bits >>> 17; bits ^= bits << 5;
      const v = cloud[p]!, a = v < 0 ? 0 : v > 1 ? 1 : v, keep = 1 - a, n = bits * noiseAmp;
      out[i] = (px[i]! * k + b0) * keep + c0 * a + n;
      out[i + 1] = (px[i + 1]! * k + b1) * keep + c1 * a + n;
      out[i + 2] = (px[i + 2]! * k + b2) * keep + c2 * a + n;
    }
  }
  return new Uint8Array(out.buffer);
}

/**
 * The names in `imgDir` (none when it is missing). Anything but a folder there is the user's
 * (even under --force: a file exp did not write is never replaced), so it is a coded error.
 */
function existingImages(imgDir: string): string[] {
  if (!existsSync(imgDir)) return [];
  if (!statSync(imgDir).isDirectory()) {
    throw new DataError({
      code: 'SYNTH_FAILED',
      message: `${imgDir} is not a folder, so the images cannot be written there`,
      fix: 'remove or rename it, or choose another --out',
      file: imgDir,
    });
  }
  return readdirSync(imgDir);
}

/** Written next to the CSV: how the folder was generated, and proof that synthesize owns it. */
export const SYNTH_MARKER = 'synth.json';

/**
 * Writes a synthetic dataset: `outDir/train_v2.csv` (header `image_name,tags`, names
 * `train_0`..`train_<count-1>`), `outDir/train-jpg/<name>.jpg` and `outDir/synth.json`
 * (the settings). The CSV is written last and atomically: a folder with a CSV is complete,
 * and an interrupted run can simply be repeated. The same (count, seed, size, quality)
 * gives byte-identical files.
 *
 * An image folder that already holds files is only written into when synth.json shows it
 * is synthetic (or `overwrite` is set); then images `train_<n>.jpg` with n >= count, left by
 * a larger earlier run, are deleted so the folder holds exactly the new dataset.
 */
export async function synthesize(opts: SynthOptions): Promise<SynthResult> {
  const { outDir, count, seed, size = 256, quality = 90, concurrency = 8, onProgress } = opts;
  for (const [k, v, lo, hi] of [['count', count, 1, 1e7], ['seed', seed, 0, 2 ** 53], ['size', size, 8, 4096], ['quality', quality, 1, 100]] as const) {
    if (!Number.isInteger(v) || v < lo || v > hi) throw new RangeError(`synthesize: ${k} must be an integer in [${lo}, ${hi}], got ${v}`);
  }
  const imgDir = join(outDir, 'train-jpg'), marker = join(outDir, SYNTH_MARKER);
  const present = existingImages(imgDir);
  if (present.length > 0 && !existsSync(marker) && !opts.overwrite) {
    throw new DataError({
      code: 'SYNTH_FAILED',
      message: `${imgDir} already holds ${present.length} files that were not generated by exp (no ${SYNTH_MARKER}); `
        + 'refusing to overwrite what may be a real dataset. Choose an empty folder, or remove them.',
      file: imgDir,
    });
  }
  mkdirSync(imgDir, { recursive: true });
  writeJsonAtomic(marker, { generator: 'exp data synth', count, seed, size, quality });
  for (const f of present) {
    const m = /^train_(\d+)\.jpg$/.exec(f);
    if (m && Number(m[1]) >= count) rmSync(join(imgDir, f));
  }
  const labels: Tag[][] = new Array<Tag[]>(count);
  let next = 0, done = 0, failed = false;
  // Rendering is synchronous on this thread; each await hands the JPEG encode and write to
  // libuv's pool, so rendering the next image overlaps encoding the previous ones.
  const worker = async (): Promise<void> => {
    while (!failed && next < count) {
      const i = next++, rng = imageRng(seed, i);
      labels[i] = sampleTags(rng);
      const pixels = renderChip(labels[i], size, rng);
      try {
        // sharp's default Huffman optimisation made encoding 1.6-2x slower here, for files only 5% smaller.
        await sharp(pixels, { raw: { width: size, height: size, channels: 3 } }).jpeg({ quality, optimiseCoding: false }).toFile(join(imgDir, `train_${i}.jpg`));
      } catch (e) {
        failed = true; // stop the other workers too
        throw e;
      }
      onProgress?.(++done, count);
    }
  };
  await Promise.all(Array.from({ length: Math.max(1, Math.min(concurrency, count)) }, worker));
  const tagCounts = Object.fromEntries(TAGS.map((t) => [t, 0])) as Record<Tag, number>;
  for (const tags of labels) for (const t of tags) tagCounts[t]++;
  const csv = join(outDir, 'train_v2.csv');
  writeFileAtomic(csv, ['image_name,tags', ...labels.map((tags, i) => `train_${i},${tags.join(' ')}`)].join('\n') + '\n');
  return { count, tagCounts, files: [csv, marker, ...labels.map((_, i) => join(imgDir, `train_${i}.jpg`))] };
}
