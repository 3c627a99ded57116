/**
 * Summarises V8 .cpuprofile files (node --cpu-prof): self time per function and per code origin
 * (a package in node_modules, a workspace lib or service, Node internals, GC).
 */
import { readFileSync } from 'node:fs';

interface CpuProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
  children?: number[];
}
interface CpuProfile {
  nodes: CpuProfileNode[];
  samples: number[];
  timeDeltas: number[];
  startTime: number;
  endTime: number;
}

export interface ProfileSummary {
  totalMs: number;
  /** Busy time: total minus (idle) and (program) waiting. */
  busyMs: number;
  byOrigin: { origin: string; ms: number; share: number }[];
  byFunction: { fn: string; origin: string; ms: number; share: number }[];
}

export function originOf(url: string, fn: string): string {
  if (!url) {
    if (fn === '(garbage collector)') return 'GC';
    if (fn === '(idle)' || fn === '(program)') return fn;
    return 'native';
  }
  const nm = /node_modules\/((?:@[^/]+\/)?[^/]+)/.exec(url);
  if (nm) return nm[1]!;
  const ws = /\/(libs|services)\/([^/]+)\//.exec(url);
  if (ws) return `${ws[1]}/${ws[2]}`;
  if (url.startsWith('node:')) return `node:${url.slice(5).split('/')[0]}`;
  return url.replace(/^file:\/\//, '');
}

export function summarise(file: string, top = 25): ProfileSummary {
  const p = JSON.parse(readFileSync(file, 'utf8')) as CpuProfile;
  const byId = new Map(p.nodes.map((n) => [n.id, n]));
  const selfUs = new Map<number, number>();
  for (let i = 0; i < p.samples.length; i++) {
    const id = p.samples[i]!;
    selfUs.set(id, (selfUs.get(id) ?? 0) + (p.timeDeltas[i] ?? 0));
  }
  const origins = new Map<string, number>();
  const fns = new Map<string, { origin: string; us: number }>();
  let total = 0;
  let waiting = 0;
  for (const [id, us] of selfUs) {
    const n = byId.get(id);
    if (!n) continue;
    const { functionName, url, lineNumber } = n.callFrame;
    const fn = functionName || '(anonymous)';
    const origin = originOf(url, fn);
    total += us;
    if (origin === '(idle)' || origin === '(program)') waiting += us;
    origins.set(origin, (origins.get(origin) ?? 0) + us);
    const short = url ? url.replace(/^.*\/(node_modules|libs|services)\//, '$1/').replace(/^file:\/\//, '') : '';
    const key = `${fn} ${short}${url ? `:${lineNumber + 1}` : ''}`;
    const f = fns.get(key) ?? { origin, us: 0 };
    f.us += us;
    fns.set(key, f);
  }
  const busy = total - waiting;
  return {
    totalMs: total / 1000,
    busyMs: busy / 1000,
    byOrigin: [...origins]
      .filter(([o]) => o !== '(idle)' && o !== '(program)')
      .map(([origin, us]) => ({ origin, ms: us / 1000, share: us / busy }))
      .sort((a, b) => b.ms - a.ms),
    byFunction: [...fns]
      .filter(([, f]) => f.origin !== '(idle)' && f.origin !== '(program)')
      .map(([fn, f]) => ({ fn, origin: f.origin, ms: f.us / 1000, share: f.us / busy }))
      .sort((a, b) => b.ms - a.ms)
      .slice(0, top),
  };
}
