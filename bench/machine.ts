/**
 * What the numbers were measured on: CPU, cores, memory, load, Node, and each backend's
 * versions (probed once at the start; a backend that does not initialise is listed with why).
 */
import { readFileSync } from 'node:fs';
import { availableParallelism, loadavg, totalmem } from 'node:os';
import sharp from 'sharp';
import { selectBackend, type BackendInfo, type BackendName } from '../src/backend/select.js';
import type { Row } from './table.js';

/** The backends the bench measures, fastest first. tensorflow-gpu is left out: it would load a
 * second libtensorflow, and this bench is about the CPU. */
export const BENCH_BACKENDS = ['tensorflow', 'wasm', 'cpu'] as const satisfies readonly BackendName[];
export type BenchBackend = (typeof BENCH_BACKENDS)[number];

export interface Machine {
  cpu: string;
  cores: number;
  memGiB: number;
  node: string;
  load: number[];
  sharp: string;
  backends: Partial<Record<BenchBackend, BackendInfo>>;
  unavailable: Partial<Record<BenchBackend, string>>;
}

/** The CPU's name, family/model (a VM often shows a generic name) and the vector ISA. */
function cpuModel(): string {
  try {
    const info = readFileSync('/proc/cpuinfo', 'utf8');
    const field = (k: string): string | undefined => new RegExp(`^${k}\\s*:\\s*(.+)$`, 'm').exec(info)?.[1]?.trim();
    const flags = field('flags')?.split(' ') ?? [];
    const isa = [flags.includes('avx512f') ? 'AVX-512' : flags.includes('avx2') ? 'AVX2' : undefined, flags.includes('amx_tile') ? 'AMX' : undefined].filter(
      Boolean,
    );
    return `${field('model name') ?? 'unknown CPU'} (family ${field('cpu family') ?? '?'}, model ${field('model') ?? '?'})${isa.length ? `, ${isa.join(', ')}` : ''}`;
  } catch {
    return 'unknown CPU';
  }
}

/** Probes the backends (ends on none in particular: each section selects its own). */
export async function describeMachine(): Promise<Machine> {
  const backends: Machine['backends'] = {};
  const unavailable: Machine['unavailable'] = {};
  for (const name of BENCH_BACKENDS) {
    try {
      backends[name] = await selectBackend(name);
    } catch (e) {
      unavailable[name] = (e as Error).message.split('\n')[0]!;
    }
  }
  return {
    cpu: cpuModel(),
    cores: availableParallelism(),
    memGiB: Math.round(totalmem() / 2 ** 30),
    node: process.version,
    load: loadavg().map((l) => +l.toFixed(2)),
    sharp: `sharp ${sharp.versions.sharp}, libvips ${sharp.versions.vips}`,
    backends,
    unavailable,
  };
}

export function machineHeader(m: Machine): string {
  const lines = [
    `machine: ${m.cpu}, ${m.cores} cores, ${m.memGiB} GiB, Node ${m.node}, ${m.sharp}`,
    `load average at start: ${m.load.join(' ')} on ${m.cores} cores${m.load[0]! > m.cores * 0.5 ? ' (busy: other work shares the CPU, so figures are noisy; the `cores` columns show how much CPU each figure got)' : ''}`,
  ];
  for (const name of BENCH_BACKENDS) {
    const b = m.backends[name];
    lines.push(
      b
        ? `backend ${name}: ${b.device}, ${b.threads} thread${b.threads === 1 ? '' : 's'}, ${b.version}`
        : `backend ${name}: unavailable (${m.unavailable[name]})`,
    );
  }
  return lines.join('\n');
}

export function machineRow(m: Machine): Row {
  return {
    section: 'machine',
    name: 'machine',
    cpu: m.cpu,
    cores: m.cores,
    mem_gib: m.memGiB,
    node: m.node,
    load_start: m.load,
    sharp: m.sharp,
    backends: Object.fromEntries(
      BENCH_BACKENDS.map((n) => [
        n,
        m.backends[n] ? `${m.backends[n]!.device}; ${m.backends[n]!.threads} threads; ${m.backends[n]!.version}` : `unavailable: ${m.unavailable[n]}`,
      ]),
    ),
  };
}
