/**
 * Tiny SVG primitives for the report: scales, nice ticks, axes, marks and a colour ramp.
 * Strings out, nothing else: the page inlines them, so it opens offline with no script library.
 * Coordinates are rounded to 0.1 px to keep a 1,000-point page small.
 */

export const esc = (s: string): string => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');

const r1 = (x: number): string => String(Math.round(x * 10) / 10);

type Attrs = Record<string, string | number | undefined>;
const attrs = (a: Attrs): string =>
  Object.entries(a)
    .filter(([, v]) => v !== undefined)
    .map(([k, v]) => ` ${k}="${typeof v === 'number' ? r1(v) : esc(v!)}"`)
    .join('');

/** A mark with an optional tooltip (<title>). */
const el = (tag: string, a: Attrs, title?: string): string => (title ? `<${tag}${attrs(a)}><title>${esc(title)}</title></${tag}>` : `<${tag}${attrs(a)}/>`);

export const line = (x1: number, y1: number, x2: number, y2: number, a: Attrs = {}): string => el('line', { x1, y1, x2, y2, stroke: '#999', ...a });
export const circle = (cx: number, cy: number, r: number, a: Attrs = {}, title?: string): string => el('circle', { cx, cy, r, ...a }, title);
export const rect = (x: number, y: number, width: number, height: number, a: Attrs = {}, title?: string): string =>
  el('rect', { x, y, width: Math.max(width, 0), height: Math.max(height, 0), ...a }, title);
export const text = (x: number, y: number, s: string, a: Attrs = {}): string => `<text${attrs({ x, y, 'font-size': 11, ...a })}>${esc(s)}</text>`;
export function polyline(pts: readonly [number, number][], a: Attrs = {}, title?: string): string {
  return el('polyline', { points: pts.map(([x, y]) => `${r1(x)},${r1(y)}`).join(' '), fill: 'none', ...a }, title);
}

export const svg = (w: number, h: number, body: string, label: string): string =>
  `<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 ${w} ${h}" width="${w}" height="${h}" role="img" aria-label="${esc(label)}">${body}</svg>`;

export interface Scale {
  (v: number): number;
  domain: [number, number];
}

/** A linear scale from `domain` to `range`; a zero-width domain maps to the middle. */
export function scale(domain: [number, number], range: [number, number]): Scale {
  const [d0, d1] = domain;
  const f = ((v: number) => (d1 === d0 ? (range[0] + range[1]) / 2 : range[0] + ((v - d0) / (d1 - d0)) * (range[1] - range[0]))) as Scale;
  f.domain = domain;
  return f;
}

/** The [min, max] of the finite values (a small pad around a single value). */
export function extent(values: Iterable<number>): [number, number] {
  let lo = Infinity;
  let hi = -Infinity;
  for (const v of values)
    if (Number.isFinite(v)) {
      lo = Math.min(lo, v);
      hi = Math.max(hi, v);
    }
  if (lo === Infinity) return [0, 1];
  if (lo === hi) return [lo - (Math.abs(lo) || 1) * 0.05, hi + (Math.abs(hi) || 1) * 0.05];
  return [lo, hi];
}

/** About `n` round tick values across the domain. */
export function ticks([lo, hi]: [number, number], n = 5): number[] {
  const step0 = (hi - lo) / Math.max(n, 1);
  if (!(step0 > 0)) return [lo];
  const mag = 10 ** Math.floor(Math.log10(step0));
  const step = [1, 2, 5, 10].map((m) => m * mag).find((s) => s >= step0) ?? 10 * mag;
  const out: number[] = [];
  for (let v = Math.ceil(lo / step) * step; v <= hi + step * 1e-9; v += step) out.push(Number(v.toPrecision(12)));
  return out;
}

export const fmt = (v: number): string => (Number.isInteger(v) ? String(v) : String(Number(v.toPrecision(4))));

export interface Frame {
  w: number;
  h: number;
  left: number;
  right: number;
  top: number;
  bottom: number;
}

export const FRAME: Frame = { w: 760, h: 320, left: 56, right: 16, top: 12, bottom: 40 };

/** Left and bottom axes with ticks and labels. */
export function axes(x: Scale, y: Scale, f: Frame, xLabel: string, yLabel: string, xInteger = false): string {
  const x0 = f.left;
  const y0 = f.h - f.bottom;
  const parts = [line(x0, y0, f.w - f.right, y0, { stroke: '#444' }), line(x0, f.top, x0, y0, { stroke: '#444' })];
  // Counts (epochs, points) get whole-number ticks only.
  for (const t of ticks(x.domain, 8).filter((v) => !xInteger || Number.isInteger(v)))
    parts.push(line(x(t), y0, x(t), y0 + 4, { stroke: '#444' }), text(x(t), y0 + 16, fmt(t), { 'text-anchor': 'middle' }));
  for (const t of ticks(y.domain, 5))
    parts.push(
      line(x0 - 4, y(t), x0, y(t), { stroke: '#444' }),
      line(x0, y(t), f.w - f.right, y(t), { stroke: '#eee' }),
      text(x0 - 6, y(t) + 4, fmt(t), { 'text-anchor': 'end' }),
    );
  parts.push(text((x0 + f.w - f.right) / 2, f.h - 6, xLabel, { 'text-anchor': 'middle' }));
  parts.push(text(12, (f.top + y0) / 2, yLabel, { 'text-anchor': 'middle', transform: `rotate(-90 12 ${r1((f.top + y0) / 2)})` }));
  return parts.join('');
}

/** A perceptual ramp (viridis stops), t in [0, 1]. */
const STOPS = ['#440154', '#3b528b', '#21918c', '#5ec962', '#fde725'];
export function colour(t: number): string {
  const c = Math.min(Math.max(Number.isFinite(t) ? t : 0, 0), 1) * (STOPS.length - 1);
  const i = Math.min(Math.floor(c), STOPS.length - 2);
  const mix = (k: number): number => {
    const a = parseInt(STOPS[i]!.slice(1 + 2 * k, 3 + 2 * k), 16);
    const b = parseInt(STOPS[i + 1]!.slice(1 + 2 * k, 3 + 2 * k), 16);
    return Math.round(a + (b - a) * (c - i));
  };
  return `#${[0, 1, 2].map((k) => mix(k).toString(16).padStart(2, '0')).join('')}`;
}
