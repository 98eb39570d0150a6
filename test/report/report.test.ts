/**
 * `exp report SWEEP`: the page written from sweep folders in the store's format (no training),
 * opened in headless Debian Chromium (playwright-core) as a user would open the file: no console
 * errors, every panel drawn (counted by its SVG marks), the best point the one `exp compare
 * --json` ranks first, the table sortable. Also a sweep in progress, a single point, 1,000
 * points (a small page, at most 200 curves) and the coded errors. Screenshots are kept in the
 * test's temp dir, and copied to $EXP_TEST_ARTIFACTS when set.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { copyFileSync, existsSync, mkdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { chromium, type Browser, type Page } from 'playwright-core';
import { exp, expIn, tempDir } from '../helpers/cli.js';
import { TAGS, writeSweep } from './fixture.js';

const CHROMIUM = '/usr/bin/chromium';
const WAIT = 120_000;
let browser: Browser | undefined;

before(async () => {
  if (!existsSync(CHROMIUM)) return;
  browser = await chromium.launch({ executablePath: CHROMIUM, headless: true, timeout: WAIT, args: ['--no-sandbox', '--disable-gpu', '--no-first-run'] });
});
after(async () => {
  await browser?.close();
});

interface Opened {
  page: Page;
  errors: string[];
  loadMs: number;
}

/** Opens the report file in a fresh page, collecting console errors and uncaught exceptions. */
async function open(file: string, t: { skip: (m: string) => void }): Promise<Opened | undefined> {
  if (!browser) {
    t.skip(`${CHROMIUM} is missing: install Debian's chromium (bash scripts/setup-test-env.sh does, as root)`);
    return undefined;
  }
  const page = await browser.newPage({ viewport: { width: 1150, height: 900 } });
  const errors: string[] = [];
  page.on('console', (m) => void (m.type() === 'error' && errors.push(m.text())));
  page.on('pageerror', (e) => void errors.push(String(e)));
  // Nothing but the file itself may load: the page must open offline.
  page.on('request', (r) => void (r.url().startsWith('file://') || errors.push(`network request: ${r.url()}`)));
  const t0 = Date.now();
  await page.goto(`file://${file}`, { waitUntil: 'load', timeout: WAIT });
  return { page, errors, loadMs: Date.now() - t0 };
}

/** SVG data marks per panel: polylines, circles, rects inside each data-panel section (a string: tsx's helpers do not exist in the page). */
const MARKS = `(() => {
  const out = {};
  document.querySelectorAll('section[data-panel]').forEach((s) => {
    const n = (sel) => s.querySelectorAll('svg ' + sel).length;
    out[s.dataset.panel] = { polyline: n('polyline'), circle: n('circle'), rect: n('rect'), note: s.querySelector('.note')?.textContent ?? '' };
  });
  return out;
})()`;
const marks = (page: Page): Promise<Record<string, { polyline: number; circle: number; rect: number; note: string }>> => page.evaluate(MARKS);

async function screenshot(page: Page, dir: string, name: string): Promise<void> {
  const file = join(dir, `${name}.png`);
  await page.screenshot({ path: file, fullPage: true });
  assert.ok(statSync(file).size > 10_000);
  const keep = process.env.EXP_TEST_ARTIFACTS;
  if (keep) {
    mkdirSync(keep, { recursive: true });
    copyFileSync(file, join(keep, `${name}.png`));
  }
}

const N = 20;

test('the report of a finished sweep opens offline in Chromium: every panel drawn, no console errors, the best point as exp compare ranks it', async (t) => {
  const sweep = writeSweep({ points: N });
  const out = join(sweep, '..', 'report.html');
  const r = exp(['report', sweep, '--out', out]);
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, new RegExp(`Wrote .*report\\.html \\(\\d+ KB\\): ${N} of ${N} points with final_val_fbeta`));
  const compare = JSON.parse(exp(['compare', sweep, '--json']).stdout) as { name: string; status: string }[];
  const o = await open(out, t);
  if (!o) return;
  assert.deepEqual(o.errors, []);
  const m = await marks(o.page);
  assert.deepEqual(Object.keys(m).sort(), ['curves', 'history', 'importance', 'parallel', 'summary', 'table', 'tags']);
  // N results in finishing order plus the best-so-far line; a curve (val, train) per point; a ring per pruned point.
  assert.equal(m.history!.circle, N);
  assert.equal(m.history!.polyline, 1);
  const pruned = compare.filter((c) => c.status === 'pruned').length;
  assert.ok(pruned >= 2);
  assert.equal(m.curves!.polyline, 2 * N);
  assert.equal(m.curves!.circle, pruned);
  assert.equal(m.parallel!.polyline, N - pruned, 'completed points only: a pruned result is partial');
  // Three swept settings -> three bars, and the marginal of the top one over the completed points.
  assert.equal(m.importance!.rect, 3);
  assert.equal(m.importance!.polyline, 1);
  assert.equal(m.importance!.circle, N - pruned);
  // Per-tag cells: the top 10 of the 10 points that ended with per-tag results.
  assert.equal(m.tags!.rect, 10 * TAGS.length);
  const best = await o.page.locator('[data-best]').getAttribute('data-best');
  assert.equal(best, compare[0]!.name);
  const pruneTip = await o.page.locator('section[data-panel="curves"] circle.pruned title').first().textContent();
  assert.match(pruneTip ?? '', /pruned: pruned at epoch 2: val_fbeta 0\.\d+ < median/);
  // The importance of the learning rate, the setting the result depends on, comes first.
  assert.equal(await o.page.locator('section[data-panel="importance"] svg text').first().textContent(), 'training.learning_rate');
  // The table: exp compare's rows in its order; a click on a header sorts by it, a second click reverses.
  const firstCells = (): Promise<string[]> => o.page.locator('section[data-panel="table"] tbody tr td:first-child').allTextContents();
  assert.deepEqual(
    await firstCells(),
    compare.map((c) => c.name),
  );
  const header = o.page.locator('section[data-panel="table"] th', { hasText: /^final_val_fbeta$/ });
  await header.click();
  const asc = await firstCells();
  await header.click();
  const desc = await firstCells();
  assert.equal(desc[0], compare[0]!.name);
  assert.equal(asc[asc.length - 1], compare[0]!.name);
  assert.deepEqual([...asc].reverse(), desc);
  assert.deepEqual(o.errors, []);
  console.log(`# report ${Math.round(statSync(out).size / 1024)} KB, loaded in ${o.loadMs} ms`);
  await screenshot(o.page, join(sweep, '..'), 'report-sweep');
  await o.page.close();
});

test('a sweep in progress is labelled with how much is known; a single point says why it has no history or importances', async (t) => {
  const sweep = writeSweep({ points: 8, running: 2, planned: 2, seed: 'progress' });
  const r = await expIn(['report', sweep]);
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /4 of 8 points with final_val_fbeta \(sweep in progress\)/);
  const file = join(sweep, 'report.html');
  const html = readFileSync(file, 'utf8');
  assert.match(html, /in progress: 4 of 8 points known/);
  const one = writeSweep({ points: 1, seed: 'one' });
  assert.equal((await expIn(['report', one])).code, 0);
  const o = await open(file, t);
  if (!o) return;
  const m = await marks(o.page);
  assert.deepEqual(o.errors, []);
  // Running points draw their curves so far (3 epochs), without a result.
  assert.equal(m.curves!.polyline, 12);
  assert.equal(m.history!.circle, 4);
  await o.page.close();
  const p = await open(join(one, 'report.html'), t);
  const single = await marks(p!.page);
  assert.deepEqual(p!.errors, []);
  assert.match(single.history!.note, /only 1 point has a result: a history needs 2 or more/);
  assert.match(single.importance!.note, /1 point has completed: importances need 3 or more \(pruned and failed points are left out, as Optuna does\)/);
  assert.equal(single.curves!.polyline, 2);
  assert.equal(single.tags!.rect, TAGS.length);
  await p!.page.close();
});

test('a sweep of 1,000 points: the page stays small, draws at most 200 curves and says so, and loads in Chromium', async (t) => {
  const sweep = writeSweep({ points: 1000, seed: 'large' });
  const r = await expIn(['report', sweep]);
  assert.equal(r.code, 0, r.stderr);
  const file = join(sweep, 'report.html');
  const size = statSync(file).size;
  assert.ok(size < 3 * 2 ** 20, `${size} bytes`);
  const o = await open(file, t);
  if (!o) return;
  const m = await marks(o.page);
  assert.deepEqual(o.errors, []);
  assert.equal(await o.page.locator('section[data-panel="curves"] polyline.val').count(), 200);
  assert.match(m.curves!.note, /200 of 1000 curves drawn: the best 100 and a random sample of the rest/);
  assert.equal(m.parallel!.polyline, 800, 'every completed point (every 5th is pruned)');
  assert.equal(await o.page.locator('section[data-panel="table"] tbody tr').count(), 1000);
  console.log(`# 1,000 points: report ${(size / 2 ** 20).toFixed(2)} MB, loaded in ${o.loadMs} ms`);
  await screenshot(o.page, join(sweep, '..'), 'report-1000');
  await o.page.close();
});

test('exp report errors are coded: a missing sweep, an unknown --metric, an --out that is a user file, an empty folder, a damaged sweep.yaml', async () => {
  const sweep = writeSweep({ points: 3, seed: 'errors' });
  const missing = await expIn(['report', join(sweep, 'nope')]);
  assert.equal(missing.code, 2);
  assert.match(missing.stderr, /PATH_NOT_FOUND/);
  const metric = await expIn(['report', sweep, '--metric', 'val_nope']);
  assert.equal(metric.code, 2);
  assert.match(metric.stderr, /BAD_OPTION_VALUE/);
  const mine = join(tempDir('exp-report-out-'), 'notes.html');
  writeFileSync(mine, '<p>my notes</p>\n');
  const over = await expIn(['report', sweep, '--out', mine]);
  assert.equal(over.code, 2);
  assert.match(over.stderr, /is not a report exp wrote.*BAD_OPTION_VALUE/s);
  assert.equal(readFileSync(mine, 'utf8'), '<p>my notes</p>\n');
  const empty = tempDir('exp-report-empty-');
  const none = await expIn(['report', empty]);
  assert.equal(none.code, 2, 'a folder given on the command line that is no sweep is invalid input');
  assert.match(none.stderr, /holds no sweep points.*NOT_A_SWEEP_FOLDER/s);
  const damaged = writeSweep({ points: 2, seed: 'damaged' });
  writeFileSync(join(damaged, 'sweep.yaml'), 'sweep: { metric: [unclosed\n');
  const bad = await expIn(['report', damaged]);
  assert.equal(bad.code, 1);
  assert.match(bad.stderr, /sweep\.yaml .* is damaged.*RUN_FILE_CORRUPT/s);
  // A report exp wrote is replaced; --metric ranks by another metric.
  assert.equal((await expIn(['report', sweep, '--out', join(sweep, 'r.html')])).code, 0);
  const again = await expIn(['report', sweep, '--out', join(sweep, 'r.html'), '--metric', 'val_loss']);
  assert.equal(again.code, 0, again.stderr);
  assert.match(readFileSync(join(sweep, 'r.html'), 'utf8'), /ranked by val_loss \(min\)/);
});

test('exp report --png DIR writes each chart panel as a PNG (a panel with nothing to draw has none); a --png that is a file is refused', async () => {
  const { default: sharp } = await import('sharp');
  const sweep = writeSweep({ points: 12, seed: 'png' });
  const dir = join(tempDir(), 'panels');
  const r = exp(['report', sweep, '--out', join(tempDir(), 'r.html'), '--png', dir]);
  assert.equal(r.code, 0, r.stderr);
  for (const panel of ['history', 'curves', 'parallel', 'importance', 'tags']) {
    const file = join(dir, `${panel}.png`);
    assert.ok(existsSync(file), `${panel}.png written (stdout: ${r.stdout})`);
    const meta = await sharp(file).metadata();
    assert.equal(meta.format, 'png');
    assert.ok((meta.width ?? 0) >= 400, `${panel}.png is a real picture (${meta.width} px wide)`);
  }
  const one = writeSweep({ points: 1, seed: 'png-one' });
  const oneDir = join(tempDir(), 'one-panels');
  assert.equal(exp(['report', one, '--out', join(tempDir(), 'one.html'), '--png', oneDir]).code, 0);
  assert.equal(existsSync(join(oneDir, 'history.png')), false, 'one point has no history to draw');
  const file = join(tempDir(), 'not-a-folder');
  writeFileSync(file, 'mine');
  const bad = exp(['report', sweep, '--out', join(tempDir(), 'r2.html'), '--png', file]);
  assert.equal(bad.code, 2);
  assert.match(bad.stderr, /BAD_OPTION_VALUE/);
  assert.equal(readFileSync(file, 'utf8'), 'mine');
});
