/**
 * Problems with weight files (ImageNet HDF5, user .h5 files, checkpoints) are data: a stable
 * code, the file, the layer or tensor when there is one, and how to fix it. The CLI prints
 * `message`; tests assert on `code`, `file` and `layer`.
 */

export type WeightsErrorCode =
  /** The weights file (ImageNet, or a path in model.weights) is not where it was looked for. */
  | 'WEIGHTS_NOT_FOUND'
  /** The file's size or MD5 is not the published one: a truncated or different download. */
  | 'WEIGHTS_CHECKSUM'
  /** Not an HDF5 file, or not in Keras's weights layout. */
  | 'WEIGHTS_FORMAT'
  /** A layer of the model has no weights in the file. */
  | 'WEIGHTS_MISSING_LAYER'
  /** A layer's weights in the file have another shape or count than the model's. */
  | 'WEIGHTS_SHAPE'
  /** Downloading the file failed. */
  | 'WEIGHTS_DOWNLOAD'
  /** A checkpoint's manifest or data file is unreadable, truncated or of an unknown format. */
  | 'CHECKPOINT_FORMAT'
  /** A checkpoint does not hold the model's tensors (missing, extra, or of another shape). */
  | 'CHECKPOINT_MISMATCH';

export interface WeightsErrorInit {
  code: WeightsErrorCode;
  /** What is wrong, in one sentence. */
  problem: string;
  file: string;
  /** The layer (HDF5) or tensor name (checkpoint) concerned, if any. */
  layer?: string;
  /** How to fix it. */
  fix: string;
  cause?: unknown;
}

export class WeightsError extends Error {
  readonly code: WeightsErrorCode;
  readonly file: string;
  readonly layer: string | undefined;
  readonly fix: string;

  constructor(init: WeightsErrorInit) {
    super(`${init.problem}\n  file: ${init.file}${init.layer === undefined ? '' : `\n  layer: ${init.layer}`}\n${init.fix}`,
      init.cause === undefined ? undefined : { cause: init.cause });
    this.name = 'WeightsError';
    this.code = init.code;
    this.file = init.file;
    this.layer = init.layer;
    this.fix = init.fix;
  }
}
