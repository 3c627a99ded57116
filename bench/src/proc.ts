/**
 * Per-process CPU time and memory from /proc (Linux): utime+stime in /proc/<pid>/stat, VmRSS and
 * VmHWM (peak RSS) in /proc/<pid>/status. Writing "5" to /proc/<pid>/clear_refs resets VmHWM to
 * the current RSS, so each phase gets its own peak.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { availableParallelism } from 'node:os';

/** Clock ticks per second of utime/stime (sysconf(_SC_CLK_TCK); 100 on every Linux we run on). */
export const CLK_TCK = 100;

/** CPU seconds (user + system) the process has used so far; undefined when it is gone. */
export function cpuSeconds(pid: number): number | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // Field 2 (comm) may contain spaces and parentheses: split after the last ')'.
    const rest = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    // rest[0] is field 3 (state); utime is field 14, stime field 15.
    return (Number(rest[11]) + Number(rest[12])) / CLK_TCK;
  } catch {
    return undefined;
  }
}

function statusKb(pid: number, field: 'VmRSS' | 'VmHWM'): number | undefined {
  try {
    const m = new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? Number(m[1]) : undefined;
  } catch {
    return undefined;
  }
}

export const rssMb = (pid: number): number | undefined => mb(statusKb(pid, 'VmRSS'));
export const peakRssMb = (pid: number): number | undefined => mb(statusKb(pid, 'VmHWM'));
const mb = (kb: number | undefined): number | undefined => (kb === undefined ? undefined : kb / 1024);

/** Resets the process's peak RSS (VmHWM) to its current RSS; false when not permitted. */
export function resetPeakRss(pid: number): boolean {
  try {
    writeFileSync(`/proc/${pid}/clear_refs`, '5');
    return true;
  } catch {
    return false;
  }
}

export function processName(pid: number): string | undefined {
  try {
    return readFileSync(`/proc/${pid}/comm`, 'utf8').trim();
  } catch {
    return undefined;
  }
}

/** A set of named processes measured together over one phase. */
export class ProcessMeter {
  private cpuStart = new Map<string, number>();
  private rssStart = new Map<string, number>();
  private canResetPeak = true;

  constructor(private readonly pids: Record<string, number>) {}

  names(): string[] {
    return Object.keys(this.pids);
  }

  start(): void {
    for (const [name, pid] of Object.entries(this.pids)) {
      this.cpuStart.set(name, cpuSeconds(pid) ?? NaN);
      this.rssStart.set(name, rssMb(pid) ?? NaN);
      this.canResetPeak = resetPeakRss(pid) && this.canResetPeak;
    }
  }

  /** CPU seconds used since start(), RSS at start, peak RSS since start() (MB). */
  stop(): Record<string, { cpuS: number; rssStartMb: number; peakMb: number; peakExact: boolean }> {
    const out: Record<string, { cpuS: number; rssStartMb: number; peakMb: number; peakExact: boolean }> = {};
    for (const [name, pid] of Object.entries(this.pids)) {
      out[name] = {
        cpuS: (cpuSeconds(pid) ?? NaN) - (this.cpuStart.get(name) ?? NaN),
        rssStartMb: this.rssStart.get(name) ?? NaN,
        peakMb: peakRssMb(pid) ?? NaN,
        peakExact: this.canResetPeak,
      };
    }
    return out;
  }
}

/** The whole machine's CPU time from /proc/stat (all cores): busy = everything but idle and iowait. */
export function machineCpuSeconds(): { busyS: number; totalS: number } | undefined {
  try {
    const line = readFileSync('/proc/stat', 'utf8').split('\n', 1)[0]!;
    // cpu  user nice system idle iowait irq softirq steal guest guest_nice (guest is inside user)
    const f = line.trim().split(/\s+/).slice(1, 9).map(Number);
    const total = f.reduce((a, b) => a + b, 0);
    const idle = (f[3] ?? 0) + (f[4] ?? 0);
    return { busyS: (total - idle) / CLK_TCK, totalS: total / CLK_TCK };
  } catch {
    return undefined;
  }
}

/** How busy the whole machine was over one phase, in cores (every process on it, ours or not). */
export class MachineMeter {
  private start0: { busyS: number; totalS: number } | undefined;
  private t0 = 0;

  start(): void {
    this.start0 = machineCpuSeconds();
    this.t0 = performance.now();
  }

  stop(): { busyCores: number; cores: number; elapsedS: number } {
    const end = machineCpuSeconds();
    const elapsedS = (performance.now() - this.t0) / 1000;
    const cores = availableParallelism();
    if (!this.start0 || !end || elapsedS <= 0) return { busyCores: NaN, cores, elapsedS };
    return { busyCores: (end.busyS - this.start0.busyS) / elapsedS, cores, elapsedS };
  }
}
