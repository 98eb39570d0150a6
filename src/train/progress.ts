/**
 * Progress output: a redrawn bar with images/s and ETA on a terminal, one plain line per
 * epoch otherwise (logs and CI stay readable).
 */
import type { BatchProgress, EpochRecord } from './loop.js';

export interface Out {
  write(s: string): unknown;
  isTTY?: boolean;
}

export class Progress {
  private lastDraw = 0;
  /** `line` receives the epoch lines (to the terminal and train.log); the bar goes to `out` only. */
  constructor(
    private readonly out: Out,
    private readonly epochs: number,
    private readonly line: (s: string) => void = (s) => {
      out.write(s);
    },
  ) {}

  batch({ epoch, batch, batches, images, seconds }: BatchProgress): void {
    if (!this.out.isTTY) return;
    const now = Date.now();
    if (batch < batches && now - this.lastDraw < 200) return;
    this.lastDraw = now;
    const width = 24;
    const filled = Math.round((batch / batches) * width);
    const ips = seconds > 0 ? images / seconds : 0;
    const eta = ips > 0 ? ((batches - batch) * (images / batch)) / ips : 0;
    this.out.write(
      `\r\x1b[2Kepoch ${epoch}/${this.epochs} [${'#'.repeat(filled)}${'.'.repeat(width - filled)}] ${batch}/${batches}  ${ips.toFixed(1)} img/s  ETA ${eta.toFixed(0)}s`,
    );
  }

  epoch(r: EpochRecord, monitor: string, improved: boolean): void {
    const m = r.metrics;
    const line = `epoch ${r.epoch}/${this.epochs}  loss ${m.loss!.toFixed(4)}  fbeta ${m.fbeta!.toFixed(4)}  val_loss ${m.val_loss!.toFixed(4)}  val_fbeta ${m.val_fbeta!.toFixed(4)}  ${r.trainImagesPerSecond.toFixed(1)} img/s  ${r.seconds.toFixed(1)}s${improved ? `  (best ${monitor})` : ''}`;
    this.line(this.out.isTTY ? `\r\x1b[2K${line}\n` : `${line}\n`);
  }
}
