/**
 * A run folder's tags.txt: the tag vocabulary training used, one tag a line, in the order of
 * the model's outputs (train/prepare.ts writes it; every use of a trained model reads it).
 * Checked when read: an empty one, or one with a repeated tag or a tag holding a space or comma,
 * is RUN_FILE_CORRUPT, since the outputs would be scored under other names.
 */
import { existsSync } from 'node:fs';
import { StoreError } from '../errors.js';
import { readFileBounded, writeFileAtomic } from '../util/fsx.js';
import { runPath, RUN_FILES } from './layout.js';

const TAGS_FIX = 'tags.txt is written by training (one tag a line): restore it, or train the run again (exp run FILE --force)';

const corrupt = (file: string, problem: string): StoreError =>
  new StoreError({ code: 'RUN_FILE_CORRUPT', message: `${file} is damaged: ${problem}`, file, fix: TAGS_FIX, exit: 'failed' });

/** The run's tags, or undefined when it has no tags.txt (it has not trained yet). */
export function readTags(runDir: string): string[] | undefined {
  const file = runPath(runDir, 'tags');
  if (!existsSync(file)) return undefined;
  let bytes: Buffer;
  try {
    // tags.txt is a few hundred bytes; a bigger one is not ours.
    bytes = readFileBounded(file, 1 << 20, RUN_FILES.tags);
  } catch (e) {
    // A run folder's file, not the user's input: the run is what failed (exit 1).
    if (e instanceof StoreError)
      throw new StoreError({ code: e.code, message: e.message, file, fix: 'restore tags.txt (one tag a line, written by training)', exit: 'failed' });
    throw e;
  }
  const tags = bytes
    .toString('utf8')
    .split('\n')
    .map((t) => t.trim())
    .filter(Boolean);
  if (tags.length === 0) throw corrupt(file, 'it holds no tags');
  const odd = tags.find((t, i) => /[\s,]/.test(t) || tags.indexOf(t) !== i);
  if (odd !== undefined) throw corrupt(file, `tag '${odd.slice(0, 40)}' is repeated or holds a space or comma`);
  return tags;
}

/** Writes the run's tag vocabulary, one a line. */
export const writeTags = (runDir: string, tags: readonly string[]): void => writeFileAtomic(runPath(runDir, 'tags'), tags.join('\n') + '\n');
