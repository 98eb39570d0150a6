/**
 * What a launcher shows while a sweep runs: counts (done, running, failed, queued, ...), the
 * best result so far, and one line per running point (epoch, batch, images/s). On a terminal
 * it is a block redrawn in place ('live'); in a log or pipe, or when the child's own output
 * is shown (one point at a time), it is one line per event ('lines').
 */
export type PointState = 'queued' | 'planned' | 'running' | 'completed' | 'failed' | 'killed' | 'pruned' | 'skipped' | 'busy';

interface PointView {
  name: string;
  state: PointState;
  epoch?: number;
  epochs?: number;
  batch?: number;
  batches?: number;
  ips?: number;
  best?: number;
  where?: string;
}

export interface DisplayOptions {
  /** live: a redrawn block (a terminal); lines: a line per event; ends: only starts and ends (the child shows its own epochs). */
  mode: 'live' | 'lines' | 'ends';
  /** The metric "best so far" follows, and its direction. */
  metric: string;
  direction: 'min' | 'max';
}

const fmt = (v: number | undefined): string => (v === undefined || !Number.isFinite(v) ? '-' : Number(v.toPrecision(4)).toString());

export class SweepDisplay {
  private readonly points = new Map<string, PointView>();
  private drawn = 0;
  private lastDraw = 0;
  private best: { name: string; value: number } | undefined;

  constructor(
    private readonly out: { write(s: string): unknown },
    private readonly opts: DisplayOptions,
  ) {}

  add(name: string, state: PointState = 'queued'): void {
    this.points.set(name, { name, state });
  }

  private counts(): string {
    const c: Partial<Record<PointState, number>> = {};
    for (const p of this.points.values()) c[p.state] = (c[p.state] ?? 0) + 1;
    const order: PointState[] = ['completed', 'running', 'failed', 'killed', 'pruned', 'queued', 'skipped', 'busy'];
    return order
      .filter((s) => c[s])
      .map((s) => `${c[s]} ${s === 'completed' ? 'done' : s}`)
      .join(', ');
  }

  private line(text: string): void {
    if (this.opts.mode !== 'live') {
      this.out.write(`${text}\n`);
      return;
    }
    this.clear();
    this.out.write(`${text}\n`);
    this.draw(true);
  }

  started(name: string, where?: string): void {
    const p = this.points.get(name) ?? { name, state: 'running' as const };
    Object.assign(p, { state: 'running', where });
    this.points.set(name, p);
    this.line(`started   ${name}${where ? ` (${where})` : ''}  [${this.counts()}]`);
  }

  progress(name: string, epoch: number, epochs: number | undefined, batch: number, batches: number, ips: number): void {
    const p = this.points.get(name);
    if (!p) return;
    Object.assign(p, { epoch, batch, batches, ips, ...(epochs ? { epochs } : {}) });
    this.draw();
  }

  epoch(name: string, epoch: number, value: number | undefined): void {
    const p = this.points.get(name);
    if (!p) return;
    p.epoch = epoch;
    if (value !== undefined && Number.isFinite(value)) {
      const better = (a: number, b: number | undefined): boolean => b === undefined || (this.opts.direction === 'min' ? a < b : a > b);
      if (better(value, p.best)) p.best = value;
      if (better(value, this.best?.value)) this.best = { name, value };
    }
    if (this.opts.mode === 'ends') return;
    if (this.opts.mode === 'lines')
      this.line(
        `epoch ${epoch}  ${name}  ${this.opts.metric} ${fmt(value)}  (best so far: ${this.best ? `${fmt(this.best.value)} by ${this.best.name}` : '-'})`,
      );
    else this.draw(true);
  }

  ended(name: string, state: PointState, seconds: number, reason?: string): void {
    const p = this.points.get(name) ?? { name, state };
    p.state = state;
    this.points.set(name, p);
    this.line(`${state.padEnd(9)} ${name}  ${seconds.toFixed(1)} s${reason ? `  ${reason}` : ''}  [${this.counts()}]`);
  }

  note(text: string): void {
    this.line(text);
  }

  /** Redraws the live block (at most 5 times a second unless forced). */
  private draw(force = false): void {
    if (this.opts.mode !== 'live') return;
    const now = Date.now();
    if (!force && now - this.lastDraw < 200) return;
    this.lastDraw = now;
    this.clear();
    const running = [...this.points.values()].filter((p) => p.state === 'running');
    const lines = [`sweep: ${this.counts()}; best ${this.opts.metric} so far: ${this.best ? `${fmt(this.best.value)} (${this.best.name})` : '-'}`];
    for (const p of running) {
      const at = p.epoch !== undefined ? `epoch ${p.epoch}${p.epochs ? `/${p.epochs}` : ''}${p.batches ? ` batch ${p.batch}/${p.batches}` : ''}` : 'starting';
      lines.push(
        `  ${p.name}${p.where ? ` [${p.where}]` : ''}: ${at}${p.ips ? `  ${p.ips.toFixed(1)} img/s` : ''}${p.best !== undefined ? `  best ${fmt(p.best)}` : ''}`,
      );
    }
    this.out.write(lines.map((l) => `\x1b[2K${l}\n`).join(''));
    this.drawn = lines.length;
  }

  private clear(): void {
    if (this.drawn > 0) this.out.write(`\x1b[${this.drawn}A\x1b[0J`);
    this.drawn = 0;
  }

  close(): void {
    this.clear();
  }
}
