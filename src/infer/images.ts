/**
 * The images `exp predict` scores: every image file of a folder (in natural name order:
 * test_2 before test_10), or the rows of a CSV with an image_name column (Kaggle's sample
 * submission), in its order, each found in one of the image folders given.
 */
import { existsSync, readdirSync, statSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { DataError } from '../errors.js';
import { MAX_CSV_BYTES, records } from '../data/csv.js';
import { readFileBounded } from '../util/fsx.js';

export interface ImageList {
  /** image_name of each image (the file name without its extension). */
  names: string[];
  /** Where each image is read from ('' when it was not found: a bad image). */
  files: string[];
}

const natural = new Intl.Collator('en', { numeric: true }).compare;

/** One CSV column by header name, with the label CSV's own parser (RFC 4180 quoting). */
function column(text: string, name: string, file: string): string[] {
  const [header, ...rows] = records(text.replace(/^\uFEFF/, ''), file, []);
  const at = header?.fields.indexOf(name) ?? -1;
  if (at < 0)
    throw new DataError({
      code: 'CSV_INVALID',
      message: `${file}:1: no '${name}' column (the header is: ${header?.fields.join(', ') ?? ''})`,
      fix: `give a CSV whose header has ${name} (like Kaggle's sample_submission_v2.csv), or a folder of images`,
      file,
      line: 1,
    });
  return rows.map((r) => r.fields[at] ?? '').filter(Boolean);
}

/** The images of `input` (a folder, or a CSV naming them; `imageDirs` are searched for a CSV's images). */
export function listImages(input: string, ext: string, imageDirs: readonly string[] = []): ImageList {
  if (!existsSync(input))
    throw new DataError({
      code: 'IMAGE_DIR_NOT_FOUND',
      message: `${input} does not exist`,
      fix: 'give a folder of images, or a CSV with an image_name column',
      file: input,
    });
  if (statSync(input).isDirectory()) {
    const files = readdirSync(input)
      .filter((f) => f.endsWith(ext) && !f.startsWith('.'))
      .sort(natural);
    if (files.length === 0)
      throw new DataError({
        code: 'EMPTY_DATASET',
        message: `${input} holds no *${ext} images`,
        fix: `give the folder of the images to score (e.g. test-jpg), or their extension when it is not ${ext} (e.g. exp predict ... --ext .png)`,
        file: input,
      });
    return { names: files.map((f) => f.slice(0, -ext.length)), files: files.map((f) => join(input, f)) };
  }
  const names = column(readFileBounded(input, MAX_CSV_BYTES, 'CSV').toString('utf8'), 'image_name', input);
  // Kaggle's layout: the sample submission beside test-jpg/ and test-jpg-additional/.
  const dirs = imageDirs.length > 0 ? imageDirs : ['test-jpg', 'test-jpg-additional'].map((d) => join(dirname(input), d)).filter((d) => existsSync(d));
  if (dirs.length === 0)
    throw new DataError({
      code: 'IMAGE_DIR_NOT_FOUND',
      message: `no image folder for ${input}`,
      fix: 'name the folders holding its images with --images DIR[,DIR...] (Kaggle: test-jpg,test-jpg-additional)',
      file: input,
    });
  // An image_name is a file name, never a path: one with a separator or '..' is not looked up (a bad image).
  const plain = (n: string): boolean => !/[\\/]/.test(n) && n !== '..' && n !== '.';
  const files = names.map((n) => (plain(n) ? (dirs.map((d) => join(d, n + ext)).find((f) => existsSync(f)) ?? '') : ''));
  return { names, files };
}
