/**
 * Problems with weight files (ImageNet HDF5, user .h5 files, checkpoints) are data: a stable
 * code, the file, the layer or tensor when there is one, and how to fix it. The CLI prints
 * `message`; tests assert on `code`, `file` and `layer`.
 */
import { ExpError, type WeightsErrorCode } from '../errors.js';

export type { WeightsErrorCode } from '../errors.js';

export interface WeightsErrorInit {
  code: WeightsErrorCode;
  /** What is wrong, in one sentence (the error's message adds the file, the layer and the fix). */
  message: string;
  file: string;
  /** The layer (HDF5) or tensor name (checkpoint) concerned, if any. */
  layer?: string;
  /** How to fix it. */
  fix: string;
  cause?: unknown;
}

export class WeightsError extends ExpError<WeightsErrorCode> {
  override readonly file: string;
  readonly layer: string | undefined;
  override readonly fix: string;

  constructor(init: WeightsErrorInit) {
    super({
      code: init.code,
      message: `${init.message}\n  file: ${init.file}${init.layer === undefined ? '' : `\n  layer: ${init.layer}`}\n${init.fix}`,
      fix: init.fix,
      file: init.file,
      exit: 'failed',
      cause: init.cause,
    });
    this.name = 'WeightsError';
    this.file = init.file;
    this.layer = init.layer;
    this.fix = init.fix;
  }
}
