/**
 * data.resize: nearest is PIL's nearest-neighbour (what Keras's load_img, and so the recipe,
 * used), pixel for pixel, at every reduction of a 256x256 Planet-sized JPEG: checked against
 * PIL itself in the test virtualenv. libvips's nearest did not match past 2x (43 of 1,024
 * pixels at 256->32), because it shrinks JPEGs on load first.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import sharp from 'sharp';
import { decodeImage } from '../../src/data/decode.js';
import { ROOT, tempDir } from '../helpers/cli.js';

test('nearest equals PIL NEAREST on a 256x256 JPEG at 128, 64, 32 and a non-integer 100', async () => {
  const S = 256;
  const px = Buffer.alloc(S * S * 3);
  for (let i = 0; i < px.length; i++) px[i] = (i * 2654435761) >>> 24; // noise: every pixel differs from its neighbours
  const file = join(tempDir('exp-pil-'), 'chip.jpg');
  const jpeg = await sharp(px, { raw: { width: S, height: S, channels: 3 } }).jpeg({ quality: 90 }).toBuffer();
  writeFileSync(file, jpeg);
  for (const size of [128, 64, 32, 100]) {
    const ours = await decodeImage(jpeg, size, 'nearest');
    assert.ok(ours.ok);
    const py = spawnSync(join(ROOT, '.venv', 'bin', 'python'), ['-c',
      `import sys\nfrom PIL import Image\nsys.stdout.buffer.write(Image.open(sys.argv[1]).convert('RGB').resize((${size}, ${size}), Image.NEAREST).tobytes())`, file]);
    assert.equal(py.status, 0, String(py.stderr));
    const pil = py.stdout as Buffer;
    let differ = 0;
    for (let i = 0; i < pil.length; i++) if (pil[i] !== ours.pixels[i]) differ++;
    assert.equal(differ, 0, `256->${size}: ${differ} of ${pil.length} values differ from PIL`);
  }
});
