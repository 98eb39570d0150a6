/**
 * Learning curves as in the recipe: two panels, loss and F-beta, train and validation per
 * epoch, with the best epoch (the checkpoint kept) as a dashed rule across both panels and the
 * best constant predictor's F-beta as a grey line, so one picture says whether the model learned
 * anything and which epoch was kept. Drawn with vega-lite (compiled to a vega spec, rendered headless to SVG) and
 * rasterised to PNG with sharp, so no browser or canvas is needed.
 */
import * as vega from 'vega';
import { compile, type TopLevelSpec } from 'vega-lite';
import sharp from 'sharp';

export interface EpochPoint {
  epoch: number;
  loss: number;
  val_loss: number;
  fbeta: number;
  val_fbeta: number;
}

/** What the curves mark besides the history: the best epoch kept, and the constant baseline's validation F-beta. */
export interface CurveMarks {
  bestEpoch?: number;
  baselineFbeta?: number;
}

const LOSS_PANEL = 'loss (binary cross-entropy)';
const fPanel = (beta: number): string => `F${beta} (sample-averaged)`;

/** One row per mark, in the curves' own panel field, so each facet draws only its own marks. */
function markRows(marks: CurveMarks, beta: number): Record<string, unknown>[] {
  const rows: Record<string, unknown>[] = [];
  if (marks.bestEpoch !== undefined)
    for (const [order, panel] of [LOSS_PANEL, fPanel(beta)].entries())
      rows.push({ kind: 'best', order, panel, epoch: marks.bestEpoch, label: `best epoch ${marks.bestEpoch}` });
  if (marks.baselineFbeta !== undefined && Number.isFinite(marks.baselineFbeta))
    rows.push({ kind: 'baseline', order: 1, panel: fPanel(beta), value: marks.baselineFbeta, label: `constant predictor ${marks.baselineFbeta.toFixed(3)}` });
  return rows;
}

/** The marks' legend, in words (vega-lite's legends are per encoding, not per layer). */
function subtitleOf(marks: CurveMarks, beta: number): string {
  const parts: string[] = [];
  if (marks.bestEpoch !== undefined) parts.push(`dashed green: best epoch ${marks.bestEpoch} (the checkpoint kept)`);
  if (marks.baselineFbeta !== undefined && Number.isFinite(marks.baselineFbeta))
    parts.push(`grey: the best constant predictor, F${beta} ${marks.baselineFbeta.toFixed(3)}`);
  return parts.join('; ');
}

export function curvesSpec(history: readonly EpochPoint[], title: string, beta: number, marks: CurveMarks = {}): TopLevelSpec {
  const curves = history
    .flatMap((h) => [
      { kind: 'curve', epoch: h.epoch, order: 0, panel: LOSS_PANEL, split: 'train', value: h.loss },
      { kind: 'curve', epoch: h.epoch, order: 0, panel: LOSS_PANEL, split: 'validation', value: h.val_loss },
      { kind: 'curve', epoch: h.epoch, order: 1, panel: fPanel(beta), split: 'train', value: h.fbeta },
      { kind: 'curve', epoch: h.epoch, order: 1, panel: fPanel(beta), split: 'validation', value: h.val_fbeta },
    ])
    .filter((r) => Number.isFinite(r.value));
  const rows = [...curves, ...markRows(marks, beta)];
  return {
    $schema: 'https://vega.github.io/schema/vega-lite/v6.json',
    title: { text: title, fontSize: 13, ...(subtitleOf(marks, beta) ? { subtitle: subtitleOf(marks, beta) } : {}) },
    data: { values: rows },
    facet: { row: { field: 'panel', type: 'nominal', title: null, sort: { field: 'order' }, header: { labelFontSize: 12 } } },
    resolve: { scale: { y: 'independent' } },
    spec: {
      width: 520,
      height: 200,
      layer: [
        {
          transform: [{ filter: "datum.kind === 'curve'" }],
          mark: { type: 'line', point: true },
          encoding: {
            x: { field: 'epoch', type: 'quantitative', title: 'epoch', axis: { tickMinStep: 1 } },
            y: { field: 'value', type: 'quantitative', title: null, scale: { zero: false } },
            color: { field: 'split', type: 'nominal', title: null, scale: { domain: ['train', 'validation'], range: ['#1f77b4', '#ff7f0e'] } },
          },
        },
        {
          transform: [{ filter: "datum.kind === 'best'" }],
          mark: { type: 'rule', strokeDash: [4, 3], color: '#2ca02c' },
          encoding: { x: { field: 'epoch', type: 'quantitative' }, tooltip: { field: 'label' } },
        },
        {
          transform: [{ filter: "datum.kind === 'baseline'" }],
          mark: { type: 'rule', color: '#888888', strokeDash: [2, 2] },
          encoding: { y: { field: 'value', type: 'quantitative' }, tooltip: { field: 'label' } },
        },
      ],
    },
    config: { background: 'white', font: 'DejaVu Sans, Liberation Sans, Arial, sans-serif' },
  };
}

export async function curvesSvg(history: readonly EpochPoint[], title: string, beta: number, marks: CurveMarks = {}): Promise<string> {
  const { spec } = compile(curvesSpec(history, title, beta, marks));
  const view = new vega.View(vega.parse(spec), { renderer: 'none' });
  try {
    return await view.toSVG();
  } finally {
    view.finalize();
  }
}

export async function curvesPng(history: readonly EpochPoint[], title: string, beta: number, marks: CurveMarks = {}): Promise<Buffer> {
  const svg = await curvesSvg(history, title, beta, marks);
  return sharp(Buffer.from(svg), { density: 96 }).flatten({ background: '#ffffff' }).png().toBuffer();
}
