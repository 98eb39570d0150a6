// curves.png marks the best epoch (the checkpoint kept) in both panels and the best constant
// predictor's F-beta in the F-beta panel, so one picture says whether the model learned anything.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import sharp from 'sharp';
import { curvesPng, curvesSvg } from '../../src/train/curves.js';

const history = [1, 2, 3, 4].map((e) => ({ epoch: e, loss: 0.5 / e, val_loss: 0.4 / e, fbeta: 0.5 + 0.05 * e, val_fbeta: 0.55 + 0.03 * e }));
const marksIn = (svg: string, label: RegExp): number => (svg.match(/<line aria-label="[^"]*"/g) ?? []).filter((l) => label.test(l)).length;

test('the curves mark the best epoch in both panels and the constant baseline once, and say so in words', async () => {
  const svg = await curvesSvg(history, 'run', 2, { bestEpoch: 3, baselineFbeta: 0.626 });
  assert.equal(marksIn(svg, /label: best epoch 3/), 2, 'one dashed rule per panel');
  assert.equal(marksIn(svg, /label: constant predictor 0\.626/), 1, 'the baseline only in the F-beta panel');
  assert.match(svg, /best epoch 3 \(the checkpoint kept\)/);
  assert.match(svg, /the best constant predictor, F2 0\.626/);
});

test('without marks (no best yet) the curves have no rules and no subtitle', async () => {
  const svg = await curvesSvg(history, 'run', 2);
  assert.equal(marksIn(svg, /label: /), 0);
  assert.doesNotMatch(svg, /checkpoint kept/);
  const png = await sharp(await curvesPng(history, 'run', 2)).metadata();
  assert.equal(png.format, 'png');
});
