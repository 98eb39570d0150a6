/**
 * The report's panels, each an SVG chart (or a note saying why there is none) built from
 * ReportData: optimisation history, learning curves, parallel coordinates, importances with
 * the top param's marginal, per-tag F-beta of the top points. Every data mark is an SVG
 * polyline, circle or rect with a tooltip, so a browser test can count what was drawn.
 */
import seedrandom from 'seedrandom';
import { formatValue } from '../query/cells.js';
import type { ReportData, ReportPoint } from './data.js';
import { fitForest, importances, marginalCurve } from './importance.js';
import { FRAME, axes, circle, colour, esc, extent, fmt, line, polyline, rect, scale, svg, text, type Frame } from './svg.js';

export interface Panel {
  id: string;
  title: string;
  /** The chart (SVG) or HTML; empty with a note when there is nothing to draw. */
  body: string;
  note?: string;
}

/** Where a value sits between the worst (0) and the best (1) result of the sweep. */
function goodness(d: ReportData): (v: number | undefined) => number {
  const [lo, hi] = extent(d.finished.map((p) => p.value!));
  return (v) => (v === undefined || hi === lo ? 0.5 : d.ranking.mode === 'max' ? (v - lo) / (hi - lo) : (hi - v) / (hi - lo));
}

const tip = (p: ReportPoint, d: ReportData): string =>
  `${p.row.name}: ${d.ranking.metric} ${p.value === undefined ? 'unknown' : fmt(p.value)} (${p.row.status}${p.reason ? `: ${p.reason}` : ''})`;

export function historyPanel(d: ReportData): Panel {
  const base = { id: 'history', title: `Optimisation history: each point's ${d.ranking.metric} in finishing order, and the best so far` };
  if (d.finished.length < 2)
    return { ...base, body: '', note: `only ${d.finished.length} point${d.finished.length === 1 ? ' has' : 's have'} a result: a history needs 2 or more` };
  const f = FRAME;
  const x = scale([1, d.finished.length], [f.left + 8, f.w - f.right - 8]);
  const y = scale(extent(d.finished.map((p) => p.value!)), [f.h - f.bottom - 6, f.top + 6]);
  const good = goodness(d);
  let best: number | undefined;
  const bestLine: [number, number][] = [];
  const dots = d.finished.map((p, i) => {
    // A pruned or failed point's result is partial: the best so far counts completed points only.
    if (p.row.status === 'completed' && (best === undefined || (d.ranking.mode === 'max' ? p.value! > best : p.value! < best))) best = p.value!;
    if (best !== undefined) bestLine.push([x(i + 1), y(best)]);
    return circle(x(i + 1), y(p.value!), 3.5, { fill: colour(good(p.value)), stroke: p.row.status === 'pruned' ? '#d33' : 'none' }, tip(p, d));
  });
  const body =
    axes(x, y, f, 'points in finishing order', d.ranking.metric, true) +
    polyline(bestLine, { stroke: '#d33', 'stroke-width': 2, class: 'best-so-far' }, 'best so far') +
    dots.join('');
  return { ...base, body: svg(f.w, f.h, body, base.title) };
}

/** The points whose curves are drawn: all up to `max`, else the best half of `max` and a seeded sample of the rest. */
export function curvePoints(d: ReportData, max = 200): { shown: ReportPoint[]; sampled: boolean } {
  const withCurves = d.points.filter((p) => p.curve.length > 0);
  if (withCurves.length <= max) return { shown: withCurves, sampled: false };
  const ranked = d.table.rows.map((r) => withCurves.find((p) => p.row === r)).filter((p): p is ReportPoint => p !== undefined);
  const top = ranked.slice(0, max / 2);
  const rest = ranked.slice(max / 2);
  const u = seedrandom('report-curves');
  for (let k = rest.length - 1; k > 0; k--) {
    const j = Math.floor(u() * (k + 1));
    [rest[k], rest[j]] = [rest[j]!, rest[k]!];
  }
  return { shown: [...top, ...rest.slice(0, max - top.length)], sampled: true };
}

export function curvesPanel(d: ReportData): Panel {
  const m = d.curveMetric;
  const base = {
    id: 'curves',
    title: `Learning curves of ${m ?? d.ranking.metric}: validation solid${d.trainMetric ? `, train (${d.trainMetric}) dashed` : ''}`,
  };
  if (!m) return { ...base, body: '', note: `${d.ranking.metric} is not a per-epoch metric: there is no curve of it` };
  const { shown, sampled } = curvePoints(d);
  if (shown.length === 0) return { ...base, body: '', note: 'no point has finished an epoch yet' };
  const f = FRAME;
  const all = shown.flatMap((p) => p.curve);
  const x = scale([1, Math.max(2, ...all.map((c) => c.epoch))], [f.left + 4, f.w - f.right - 4]);
  const y = scale(extent(all.flatMap((c) => [c.val ?? NaN, c.train ?? NaN])), [f.h - f.bottom - 4, f.top + 4]);
  const good = goodness(d);
  const marks = shown.map((p) => {
    const c = colour(good(p.value));
    const val = p.curve.filter((e) => Number.isFinite(e.val)).map((e): [number, number] => [x(e.epoch), y(e.val!)]);
    const train = p.curve.filter((e) => Number.isFinite(e.train)).map((e): [number, number] => [x(e.epoch), y(e.train!)]);
    const last = val[val.length - 1];
    const stop =
      p.row.status === 'pruned' && last
        ? circle(
            last[0],
            last[1],
            4,
            { fill: 'none', stroke: '#d33', 'stroke-width': 2, class: 'pruned' },
            `${p.row.name} pruned: ${p.reason ?? 'no reason recorded'}`,
          )
        : '';
    return (
      (train.length > 1 ? polyline(train, { stroke: c, 'stroke-dasharray': '4 3', 'stroke-opacity': 0.6, class: 'train' }, `${p.row.name} (train)`) : '') +
      (val.length ? polyline(val, { stroke: c, 'stroke-width': 1.5, class: 'val' }, tip(p, d)) : '') +
      stop
    );
  });
  const total = d.points.filter((p) => p.curve.length > 0).length;
  const note = sampled ? `${shown.length} of ${total} curves drawn: the best ${Math.floor(shown.length / 2)} and a random sample of the rest` : undefined;
  const pruned = d.points.filter((p) => p.row.status === 'pruned').length;
  const legend = pruned
    ? text(f.w - f.right - 4, f.top + 12, `red ring: pruned (${pruned}), hover for the reason`, { 'text-anchor': 'end', fill: '#d33' })
    : '';
  return { ...base, body: svg(f.w, f.h, axes(x, y, f, 'epoch', m, true) + marks.join('') + legend, base.title), ...(note ? { note } : {}) };
}

/** A swept value as a number on its axis: numbers as they are, anything else by its position among the values. */
export function axisOf(values: readonly unknown[], logWide = false): { pos: (v: unknown) => number; labels: [number, string][]; numeric: boolean } {
  const numeric = values.every((v) => typeof v === 'number' && Number.isFinite(v));
  if (numeric) {
    const nums = [...new Set(values as number[])].sort((a, b) => a - b);
    // A learning rate swept over decades reads on a log axis; importances keep raw values, as Optuna's fANOVA does.
    const log = logWide && nums[0]! > 0 && nums[nums.length - 1]! / nums[0]! >= 100;
    const pos = (v: unknown): number => (log ? Math.log10(v as number) : (v as number));
    return { pos, labels: nums.map((v) => [pos(v), fmt(v)]), numeric };
  }
  const keys = [...new Set(values.map((v) => JSON.stringify(v) ?? 'null'))].sort();
  return { pos: (v) => keys.indexOf(JSON.stringify(v) ?? 'null'), labels: keys.map((k, i) => [i, formatValue(JSON.parse(k))]), numeric };
}

/** The swept settings that take more than one value among the completed points. */
export const variedPaths = (d: ReportData): string[] => d.table.paths.filter((p) => new Set(d.complete.map((q) => JSON.stringify(q.row.params[p]))).size > 1);

export function parallelPanel(d: ReportData): Panel {
  const base = { id: 'parallel', title: `Parallel coordinates: the swept settings of the completed points, coloured by ${d.ranking.metric} (yellow = best)` };
  const paths = variedPaths(d);
  if (d.complete.length === 0 || paths.length === 0)
    return {
      ...base,
      body: '',
      note:
        d.complete.length === 0
          ? 'no point has completed yet (pruned and failed points are left out)'
          : 'no swept setting takes two values among the completed points',
    };
  const f: Frame = { ...FRAME, h: 340, top: 28, bottom: 24 };
  const cols = [...paths, d.ranking.metric];
  const xs = scale([0, cols.length - 1], [f.left + 40, f.w - f.right - 40]);
  const good = goodness(d);
  const axesOf = cols.map((c, i) => {
    const vals = i < paths.length ? d.complete.map((p) => p.row.params[c]) : d.complete.map((p) => p.value);
    const a = axisOf(vals, true);
    const y = scale(extent(a.labels.map(([v]) => v)), [f.h - f.bottom, f.top]);
    return { ...a, y, col: c };
  });
  const lines = d.complete.map((p) =>
    polyline(
      axesOf.map((a, i): [number, number] => [xs(i), a.y(a.pos(i < paths.length ? p.row.params[a.col] : p.value))]),
      { stroke: colour(good(p.value)), 'stroke-opacity': d.complete.length > 200 ? 0.35 : 0.8 },
      tip(p, d),
    ),
  );
  const drawn = axesOf.map((a, i) => {
    const shownLabels = a.labels.length > 8 ? a.labels.filter((_, k) => k % Math.ceil(a.labels.length / 8) === 0) : a.labels;
    return (
      line(xs(i), f.top, xs(i), f.h - f.bottom, { stroke: '#333' }) +
      text(xs(i), f.top - 10, a.col, { 'text-anchor': 'middle', 'font-weight': 'bold' }) +
      shownLabels.map(([v, s]) => text(xs(i) + 4, a.y(v) + 4, s, { fill: '#333' })).join('')
    );
  });
  return { ...base, body: svg(f.w, f.h, lines.join('') + drawn.join(''), base.title) };
}

export function importancePanel(d: ReportData): Panel {
  const base = { id: 'importance', title: `Parameter importances (fANOVA over a random forest, as Optuna's default) for ${d.ranking.metric}` };
  const paths = variedPaths(d);
  if (d.complete.length < 3 || paths.length === 0)
    return {
      ...base,
      body: '',
      note:
        d.complete.length < 3
          ? `${d.complete.length} point${d.complete.length === 1 ? ' has' : 's have'} completed: importances need 3 or more (pruned and failed points are left out, as Optuna does)`
          : 'no swept setting varies: nothing to attribute the result to',
    };
  const axesOf = paths.map((p) => axisOf(d.complete.map((q) => q.row.params[p])));
  const X = d.complete.map((q) => axesOf.map((a, i) => a.pos(q.row.params[paths[i]!])));
  const y = d.complete.map((q) => q.value!);
  // Each varied setting has two or more values: its search space is [lowest, highest] seen (as Optuna uses the distribution's bounds).
  const bounds = axesOf.map((a) => extent(a.labels.map(([v]) => v)));
  const forest = fitForest(X, y, bounds, { seed: 0 });
  const imp = importances(forest);
  if (imp.every((v) => v === 0)) return { ...base, body: '', note: `every point has the same ${d.ranking.metric}: no setting explains a difference` };
  const order = imp.map((_, i) => i).sort((a, b) => imp[b]! - imp[a]!);
  const f: Frame = { ...FRAME, h: 24 + 22 * paths.length, left: 200, bottom: 4 };
  const x = scale([0, 1], [f.left, f.w - f.right - 40]);
  const bars = order.map(
    (i, k) =>
      rect(f.left, f.top + 22 * k, x(imp[i]!) - f.left, 16, { fill: '#3b528b' }, `${paths[i]}: ${fmt(imp[i]!)}`) +
      text(f.left - 6, f.top + 22 * k + 12, paths[i]!, { 'text-anchor': 'end' }) +
      text(x(imp[i]!) + 4, f.top + 22 * k + 12, fmt(imp[i]!)),
  );
  const top = order[0]!;
  return { ...base, body: svg(f.w, f.h, bars.join(''), base.title) + marginalChart(d, paths[top]!, axesOf[top]!, forest, top, X) };
}

/** The forest's marginal effect of the most important setting, over the points' own values. */
function marginalChart(d: ReportData, path: string, a: ReturnType<typeof axisOf>, forest: ReturnType<typeof fitForest>, f: number, X: number[][]): string {
  const fr = FRAME;
  const [lo, hi] = forest.bounds[f]!;
  const xsv = a.numeric ? Array.from({ length: 41 }, (_, k) => lo + ((hi - lo) * k) / 40) : a.labels.map(([v]) => v);
  const m = marginalCurve(forest, f, xsv);
  const x = scale(extent(xsv), [fr.left + 10, fr.w - fr.right - 10]);
  const y = scale(extent([...m, ...d.complete.map((p) => p.value!)]), [fr.h - fr.bottom - 4, fr.top + 4]);
  const good = goodness(d);
  const dots = d.complete.map((p, i) => circle(x(X[i]![f]!), y(p.value!), 3, { fill: colour(good(p.value)), 'fill-opacity': 0.7 }, tip(p, d)));
  const curve = polyline(
    xsv.map((v, k): [number, number] => [x(v), y(m[k]!)]),
    { stroke: '#d33', 'stroke-width': 2, class: 'marginal' },
    `marginal effect of ${path}`,
  );
  const labels = a.numeric ? '' : a.labels.map(([v, s]) => text(x(v), fr.h - fr.bottom + 28, s, { 'text-anchor': 'middle', fill: '#555' })).join('');
  const title = `Marginal effect of ${path} (red: the forest's prediction averaged over the other settings; dots: the points)`;
  return `<h3>${esc(title)}</h3>` + svg(fr.w, fr.h, axes(x, y, fr, path, d.ranking.metric) + dots.join('') + curve + labels, title);
}

export function tagsPanel(d: ReportData, top = 10): Panel {
  const base = { id: 'tags', title: `Per-tag validation F-beta of the top ${top} points` };
  const rows = d.table.rows
    .map((r) => d.points.find((p) => p.row === r)!)
    .filter((p) => Object.keys(p.perTag).length > 0)
    .slice(0, top);
  if (rows.length === 0) return { ...base, body: '', note: 'no point has per-tag results yet (they are written when a point ends)' };
  const tags = [...new Set(rows.flatMap((p) => Object.keys(p.perTag)))];
  // Tags where the points differ most first: that is where a user would look.
  const spread = (t: string): number => Math.max(...rows.map((p) => p.perTag[t] ?? 0)) - Math.min(...rows.map((p) => p.perTag[t] ?? 0));
  tags.sort((a, b) => spread(b) - spread(a) || (a < b ? -1 : 1));
  const cw = Math.max(22, Math.min(48, Math.floor(560 / tags.length)));
  const left = 200;
  const w = left + cw * tags.length + 16;
  const h = 110 + 20 * rows.length;
  const cells = rows.flatMap((p, r) =>
    tags.map((t, c) => {
      const v = p.perTag[t];
      return rect(
        left + c * cw,
        100 + 20 * r,
        cw - 1,
        19,
        { fill: v === undefined ? '#eee' : colour(v) },
        `${p.row.name} / ${t}: ${v === undefined ? 'n/a' : fmt(v)}`,
      );
    }),
  );
  const heads = tags.map((t, c) => text(left + c * cw + cw / 2, 94, t, { transform: `rotate(-45 ${left + c * cw + cw / 2} 94)`, 'font-size': 10 }));
  const names = rows.map((p, r) =>
    text(left - 6, 100 + 20 * r + 14, p.row.name.length > 30 ? `${p.row.name.slice(0, 29)}…` : p.row.name, { 'text-anchor': 'end' }),
  );
  return {
    ...base,
    body: svg(w, h, cells.join('') + heads.join('') + names.join(''), base.title),
    note: 'colour: F-beta from 0 (purple) to 1 (yellow); tags where the points differ most come first',
  };
}
