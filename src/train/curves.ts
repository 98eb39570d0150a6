/**
 * Learning curves as in the recipe: two panels, loss and F-beta, train and validation per
 * epoch. Drawn with vega-lite (compiled to a vega spec, rendered headless to SVG) and
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

export function curvesSpec(history: readonly EpochPoint[], title: string, beta: number): TopLevelSpec {
  const rows = history
    .flatMap((h) => [
      { epoch: h.epoch, order: 0, panel: 'loss (binary cross-entropy)', split: 'train', value: h.loss },
      { epoch: h.epoch, order: 0, panel: 'loss (binary cross-entropy)', split: 'validation', value: h.val_loss },
      { epoch: h.epoch, order: 1, panel: `F${beta} (sample-averaged)`, split: 'train', value: h.fbeta },
      { epoch: h.epoch, order: 1, panel: `F${beta} (sample-averaged)`, split: 'validation', value: h.val_fbeta },
    ])
    .filter((r) => Number.isFinite(r.value));
  return {
    $schema: 'https://vega.github.io/schema/vega-lite/v6.json',
    title: { text: title, fontSize: 13 },
    data: { values: rows },
    facet: { row: { field: 'panel', type: 'nominal', title: null, sort: { field: 'order' }, header: { labelFontSize: 12 } } },
    resolve: { scale: { y: 'independent' } },
    spec: {
      width: 520,
      height: 200,
      mark: { type: 'line', point: true },
      encoding: {
        x: { field: 'epoch', type: 'quantitative', title: 'epoch', axis: { tickMinStep: 1 } },
        y: { field: 'value', type: 'quantitative', title: null, scale: { zero: false } },
        color: { field: 'split', type: 'nominal', title: null, scale: { domain: ['train', 'validation'], range: ['#1f77b4', '#ff7f0e'] } },
      },
    },
    config: { background: 'white', font: 'DejaVu Sans, Liberation Sans, Arial, sans-serif' },
  };
}

export async function curvesSvg(history: readonly EpochPoint[], title: string, beta: number): Promise<string> {
  const { spec } = compile(curvesSpec(history, title, beta));
  const view = new vega.View(vega.parse(spec), { renderer: 'none' });
  try {
    return await view.toSVG();
  } finally {
    view.finalize();
  }
}

export async function curvesPng(history: readonly EpochPoint[], title: string, beta: number): Promise<Buffer> {
  const svg = await curvesSvg(history, title, beta);
  return sharp(Buffer.from(svg), { density: 96 }).flatten({ background: '#ffffff' }).png().toBuffer();
}
