/**
 * `exp report` on a large sweep: 1,000 filled run folders (written as the store writes them,
 * no training), the report drawn by the real CLI, its size, and how long headless Chromium
 * takes to load it (the "under a few MB, under 2 s").
 */
import { spawnSync } from 'node:child_process';
import { existsSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { chromium } from 'playwright-core';
import { writeSweep } from '../test/report/fixture.js';
import { ROOT, log } from './measure.js';
import type { Column, Row } from './table.js';

const CHROMIUM = '/usr/bin/chromium';

export const REPORT_COLUMNS: Column[] = [
  { key: 'name', title: 'sweep', align: 'left' },
  { key: 'points', title: 'points' },
  { key: 'write_s', title: 'exp report s', digits: 2 },
  { key: 'mb', title: 'page MB', digits: 2 },
  { key: 'load_ms', title: 'Chromium load ms', digits: 0 },
];

export async function benchReport(opts: { sizes: number[] }): Promise<{ rows: Row[]; notes: string[] }> {
  const rows: Row[] = [];
  for (const points of opts.sizes) {
    log(`report: writing ${points} run folders`);
    const sweep = writeSweep({ points, seed: `bench-${points}` });
    const t0 = performance.now();
    const r = spawnSync(process.execPath, [join(ROOT, 'bin', 'exp.js'), 'report', sweep], { encoding: 'utf8' });
    if (r.status !== 0) throw new Error(`exp report: exit ${r.status}: ${r.stderr.slice(-400)}`);
    const writeS = (performance.now() - t0) / 1000;
    const file = join(sweep, 'report.html');
    let loadMs: number | null = null;
    if (existsSync(CHROMIUM)) {
      const browser = await chromium.launch({ executablePath: CHROMIUM, headless: true, args: ['--no-sandbox', '--disable-gpu'] });
      try {
        const page = await browser.newPage();
        const t1 = performance.now();
        await page.goto(`file://${file}`, { waitUntil: 'load' });
        loadMs = performance.now() - t1;
      } finally {
        await browser.close();
      }
    }
    rows.push({ section: 'report', name: `${points} points`, points, write_s: writeS, mb: statSync(file).size / 2 ** 20, load_ms: loadMs });
  }
  return {
    rows,
    notes: [
      'at most 200 learning curves are drawn (the best 100 and a seeded sample); the table and parallel coordinates hold every point',
      ...(existsSync(CHROMIUM) ? [] : [`${CHROMIUM} is missing: no load time`]),
    ],
  };
}
