/**
 * `exp report` on a real 2x2 sweep, trained here (tiny synthetic experiment, 2 epochs a point):
 * the page opens in headless Chromium without console errors, every panel has its marks, and
 * the best point is the one `exp compare --json` ranks first. The screenshot is kept in the
 * sweep's folder, and copied to $EXP_TEST_ARTIFACTS when set (the README's picture).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { copyFileSync, existsSync, mkdirSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { chromium } from 'playwright-core';
import { exp, tempDir } from '../helpers/cli.js';
import { tinyExperiment, trainingBackends } from '../helpers/training.js';

const CHROMIUM = '/usr/bin/chromium';

const MARKS = `(() => {
  const out = {};
  document.querySelectorAll('section[data-panel]').forEach((s) => {
    const n = (sel) => s.querySelectorAll('svg ' + sel).length;
    out[s.dataset.panel] = { polyline: n('polyline'), circle: n('circle'), rect: n('rect') };
  });
  return out;
})()`;

test(
  'the report of a real 2x2 sweep: every panel drawn in Chromium, no console errors, the best point as exp compare ranks it',
  { timeout: 900_000 },
  async (t) => {
    if (!existsSync(CHROMIUM)) return t.skip(`${CHROMIUM} is missing: bash scripts/setup-test-env.sh installs it`);
    const tmp = tempDir('exp-report-real-');
    const backend = (await trainingBackends())[0]!;
    const file = tinyExperiment(tmp, {
      backend,
      name: 'grid',
      epochs: 2,
      extra: 'sweep: { grid: { training.learning_rate: [0.002, 0.0005], training.batch_size: [8, 16] } }',
    });
    const runs = join(tmp, 'runs');
    const run = exp(['run', file, '--runs-dir', runs, '--workers', '1'], { cwd: tmp });
    assert.equal(run.code, 0, run.stdout + run.stderr);
    const sweep = join(runs, 'grid', readdirSync(join(runs, 'grid'))[0]!);
    const report = exp(['report', sweep], { cwd: tmp });
    assert.equal(report.code, 0, report.stderr);
    assert.match(report.stdout, /4 of 4 points with final_val_fbeta/);
    const compare = JSON.parse(exp(['compare', sweep, '--json'], { cwd: tmp }).stdout) as { name: string }[];
    const browser = await chromium.launch({ executablePath: CHROMIUM, headless: true, args: ['--no-sandbox', '--disable-gpu'] });
    try {
      const page = await browser.newPage({ viewport: { width: 1150, height: 900 } });
      const errors: string[] = [];
      page.on('console', (m) => void (m.type() === 'error' && errors.push(m.text())));
      page.on('pageerror', (e) => void errors.push(String(e)));
      await page.goto(`file://${join(sweep, 'report.html')}`, { waitUntil: 'load', timeout: 120_000 });
      const m = (await page.evaluate(MARKS)) as Record<string, { polyline: number; circle: number; rect: number }>;
      assert.deepEqual(errors, []);
      assert.equal(m.history!.circle, 4);
      assert.equal(m.history!.polyline, 1);
      assert.equal(m.curves!.polyline, 8, 'a validation and a train curve per point');
      assert.equal(m.parallel!.polyline, 4);
      assert.equal(m.importance!.rect, 2, 'a bar per swept setting');
      assert.equal(m.importance!.polyline, 1);
      assert.ok(m.tags!.rect >= 4 * 2, `per-tag cells: ${m.tags!.rect}`);
      assert.equal(await page.locator('[data-best]').getAttribute('data-best'), compare[0]!.name);
      const shot = join(sweep, 'report.png');
      await page.screenshot({ path: shot, fullPage: true });
      const keep = process.env.EXP_TEST_ARTIFACTS;
      if (keep) {
        mkdirSync(keep, { recursive: true });
        copyFileSync(shot, join(keep, 'report-real-2x2.png'));
      }
    } finally {
      await browser.close();
    }
  },
);
