/**
 * `exp report --png DIR`: the report's chart panels as PNG files, for a README or a chat message.
 * Each panel's SVG is rasterised by sharp (librsvg), so no browser is needed; a panel with nothing
 * to draw (one point: no history) has no file, and its note says why in the page.
 */
import { join } from 'node:path';
import { mkdirSync } from 'node:fs';
import { writeFileAtomic } from '../util/fsx.js';
import type { Panel } from './panels.js';

/** Every `<svg>...</svg>` of a panel's body (a panel may draw more than one chart). */
const svgsOf = (body: string): string[] => body.match(/<svg[\s\S]*?<\/svg>/g) ?? [];

/** Writes DIR/<panel>.png (and <panel>-2.png, ... for a panel with several charts); returns the files written. */
export async function writePanelPngs(panels: readonly Panel[], dir: string): Promise<string[]> {
  const { default: sharp } = await import('sharp');
  mkdirSync(dir, { recursive: true });
  const files: string[] = [];
  for (const p of panels) {
    for (const [i, svg] of svgsOf(p.body).entries()) {
      const file = join(dir, `${p.id}${i === 0 ? '' : `-${i + 1}`}.png`);
      // density 192: twice the SVG's pixel size, sharp enough on a high-density screen.
      writeFileAtomic(file, await sharp(Buffer.from(svg), { density: 192 }).flatten({ background: '#ffffff' }).png().toBuffer());
      files.push(file);
    }
  }
  return files;
}
