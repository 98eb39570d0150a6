/**
 * Resource use while a run trains, logged as MLflow system metrics (the `system/` prefix the
 * MLflow UI groups under "System metrics"): CPU and memory of the machine and of this
 * process, and GPU utilisation and memory (from nvidia-smi) when a GPU backend runs.
 * Sampled in the background every `seconds`; a sample that cannot be taken is left out.
 */
import { execFile } from 'node:child_process';
import { cpus, freemem, totalmem } from 'node:os';
import { readFileSync } from 'node:fs';
import type { BackendInfo } from '../backend/types.js';
import type { EventLog } from '../track/events.js';
import { systemEvent } from '../track/event-builders.js';

/** Busy and total jiffies of all CPUs, from /proc/stat (Linux); undefined elsewhere. */
function cpuTimes(): { busy: number; total: number } | undefined {
  try {
    const f = readFileSync('/proc/stat', 'utf8').split('\n')[0]!.trim().split(/\s+/).slice(1).map(Number);
    const idle = (f[3] ?? 0) + (f[4] ?? 0);
    const total = f.reduce((a, b) => a + b, 0);
    return { busy: total - idle, total };
  } catch {
    return undefined;
  }
}

function gpuSample(): Promise<Record<string, number>> {
  return new Promise((resolve) => {
    execFile('nvidia-smi', ['--query-gpu=utilization.gpu,memory.used,memory.total', '--format=csv,noheader,nounits'], { timeout: 5000 }, (err, out) => {
      if (err) {
        resolve({});
        return;
      }
      const m: Record<string, number> = {};
      out
        .trim()
        .split('\n')
        .forEach((line, i) => {
          const [util, used, total] = line.split(',').map((s) => Number(s.trim()));
          if (Number.isFinite(util)) m[`system/gpu_${i}_utilization_percentage`] = util!;
          if (Number.isFinite(used)) m[`system/gpu_${i}_memory_usage_megabytes`] = used!;
          if (Number.isFinite(used) && Number.isFinite(total) && total! > 0) m[`system/gpu_${i}_memory_usage_percentage`] = (100 * used!) / total!;
        });
      resolve(m);
    });
  });
}

export class SystemSampler {
  private timer: NodeJS.Timeout | undefined;
  private step = 0;
  private prevCpu = cpuTimes();
  private prevProc = process.cpuUsage();
  private prevAt = performance.now();

  constructor(
    private readonly events: EventLog,
    private readonly seconds: number,
    private readonly backend: BackendInfo,
  ) {}

  start(): void {
    if (this.seconds <= 0) return;
    this.timer = setInterval(() => void this.sample(), this.seconds * 1000);
    this.timer.unref();
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
  }

  private async sample(): Promise<void> {
    const m: Record<string, number> = {};
    const now = performance.now();
    const c = cpuTimes();
    if (c && this.prevCpu && c.total > this.prevCpu.total)
      m['system/cpu_utilization_percentage'] = (100 * (c.busy - this.prevCpu.busy)) / (c.total - this.prevCpu.total);
    const proc = process.cpuUsage(this.prevProc);
    const wallUs = (now - this.prevAt) * 1000;
    if (wallUs > 0) m['system/process_cpu_utilization_percentage'] = (100 * (proc.user + proc.system)) / wallUs / cpus().length;
    [this.prevCpu, this.prevProc, this.prevAt] = [c, process.cpuUsage(), now];
    const used = totalmem() - freemem();
    m['system/system_memory_usage_megabytes'] = used / 2 ** 20;
    m['system/system_memory_usage_percentage'] = (100 * used) / totalmem();
    m['system/process_rss_megabytes'] = process.memoryUsage.rss() / 2 ** 20;
    if (this.backend.name === 'tensorflow-gpu') Object.assign(m, await gpuSample());
    if (this.timer) this.events.append(systemEvent(this.step++, m));
  }
}
