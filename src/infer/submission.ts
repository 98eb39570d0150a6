/**
 * The files `exp predict` writes: Kaggle's submission format (image_name,tags with the tags
 * separated by spaces, in the run's vocabulary order) and, on request, the probabilities.
 * Pure: lines from numbers.
 */

/** `image_name,tag tag ...`: the tags whose probability is above their threshold. */
export function submissionLine(name: string, probs: ArrayLike<number>, tags: readonly string[], thresholds: readonly number[]): string {
  return `${name},${tags.filter((_, t) => probs[t]! > thresholds[t]!).join(' ')}`;
}

export const SUBMISSION_HEADER = 'image_name,tags';

export const probabilitiesHeader = (tags: readonly string[]): string => ['image_name', ...tags].join(',');

/** `image_name,p1,p2,...` (empty cells for an image that could not be read). */
export const probabilitiesLine = (name: string, probs: ArrayLike<number> | null, nTags: number): string =>
  [name, ...(probs ? Array.from({ length: nTags }, (_, t) => Number(probs[t]!.toPrecision(6))) : Array.from({ length: nTags }, () => ''))].join(',');
