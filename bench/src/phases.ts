/**
 * One measured phase: the load (SMTP through Mailwarden or straight to the sink, or raw INSTREAM
 * scans into clamd) with the CPU time and memory of every named process around it, the load
 * generator's own CPU, and how busy the whole machine was (/proc/stat: other work on a shared box
 * shows up as busy time no measured process accounts for). Used by every mode of `npm run bench`.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import type { ClamdBalance } from '@mailwarden/clamd';
import type { BenchStack } from './bench-stack.js';
import type { BenchChild } from './child.js';
import { clamdCeiling } from './clamd-ceiling.js';
import { countEvents, type LogCursor } from './log-events.js';
import { MessageFactory } from './messages.js';
import type { CeilingPhase, LoadPhase } from './plan.js';
import { MachineMeter, ProcessMeter } from './proc.js';
import type { MachineFigures, PhaseResult, ProcFigures } from './report.js';
import { percentile, runLoad } from './smtp-load.js';

/** Mailwarden's own services of the SMTP path. */
export const MW = ['smtp-gateway', 'scanner', 'reassembler'];

/**
 * Waits until the sink has counted `expected` messages (Mailwarden answers 250 before its
 * pipeline delivers): at most 20 s, and gives up after 5 s without a new arrival.
 */
export async function waitForArrivals(sink: BenchChild, expected: number): Promise<void> {
  let count = (await sink.stats()).messages ?? 0;
  const until = Date.now() + 20_000;
  let stableSince = Date.now();
  while (count < expected && Date.now() < until && Date.now() - stableSince < 5000) {
    await sleep(100);
    const now = (await sink.stats()).messages ?? 0;
    if (now !== count) {
      count = now;
      stableSince = Date.now();
    }
  }
}

/** Warm-up (JIT, connections, bucket region lookups): 40 messages of 100 KB, not measured. */
export async function warmUp(stack: BenchStack, log: (msg: string) => void, label = ''): Promise<void> {
  const warm = new MessageFactory(100 * 1024, 0.1);
  const w = await runLoad({ ...stack.smtp, concurrency: 4, maxMessages: 40, maxSeconds: 30, message: (i) => warm.message(i) });
  if (w.ok === 0) throw new Error(`warm-up${label ? ` (${label})` : ''} failed: ${JSON.stringify(w.errors)} ${w.errorSamples.join(' | ')}`);
  log(`warm-up${label ? ` (${label})` : ''}: ${w.ok} ok, errors ${JSON.stringify(w.errors)}`);
}

/** Measures the given processes (and this one, the load generator, as `bench`) around `work`. */
export async function measured<T>(
  pids: Record<string, number>,
  units: (r: T) => number,
  work: () => Promise<T>,
): Promise<{ result: T; procs: Record<string, ProcFigures>; machine: MachineFigures }> {
  const meter = new ProcessMeter(pids);
  const machine = new MachineMeter();
  meter.start();
  machine.start();
  const self = process.cpuUsage();
  const result = await work();
  await sleep(500); // late work of the last messages (S3 deletes, events)
  const own = process.cpuUsage(self);
  const n = Math.max(1, units(result));
  const procs: Record<string, ProcFigures> = {};
  for (const [name, m] of Object.entries(meter.stop())) procs[name] = { cpuS: m.cpuS, cpuMsPerUnit: (m.cpuS * 1000) / n, rssStartMb: m.rssStartMb, peakMb: m.peakMb };
  const ownS = (own.user + own.system) / 1e6;
  procs.bench = { cpuS: ownS, cpuMsPerUnit: (ownS * 1000) / n, rssStartMb: NaN, peakMb: NaN };
  return { result, procs, machine: machine.stop() };
}

export interface CeilingTarget {
  /** CLAMD_ADDRESSES syntax; default the stack's clamd. */
  addresses?: string;
  balance?: ClamdBalance;
  /** The clamd processes to measure; default the stack's clamd. */
  pids?: Record<string, number>;
}

export async function ceilingPhase(stack: BenchStack, p: CeilingPhase, target: CeilingTarget = {}): Promise<PhaseResult> {
  const factory = new MessageFactory(p.size, p.infectedRatio);
  const { result, procs, machine } = await measured(target.pids ?? { clamd: stack.pids.clamd! }, (r) => r.scans, () =>
    clamdCeiling({
      addresses: target.addresses ?? stack.clamdAddresses,
      ...(target.balance ? { balance: target.balance } : {}),
      connections: p.connections,
      maxScans: p.maxScans,
      maxSeconds: p.maxSeconds,
      part: (i) => factory.part(i),
    }),
  );
  const lat = [...result.latenciesMs].sort((a, b) => a - b);
  return {
    id: p.id, kind: 'clamd', size: p.size, concurrency: p.connections, infectedRatio: p.infectedRatio,
    count: result.scans, errors: result.errors, errorDetail: result.errors ? { clamd: result.errors } : {}, errorSamples: [],
    elapsedS: result.elapsedS, ratePerS: result.scans / result.elapsedS, p50Ms: percentile(lat, 50), p95Ms: percentile(lat, 95), p99Ms: percentile(lat, 99),
    procs, machine, infectedFound: result.infected,
  };
}

/**
 * `awaitDelivery`: the measurement window runs until every accepted message reached the sink
 * (else it ends 500 ms after the last reply, as the main phases always did).
 */
export async function loadPhase(stack: BenchStack, p: LoadPhase, scannerLog: LogCursor | undefined, s3Counted: boolean, awaitDelivery = false): Promise<PhaseResult> {
  const factory = new MessageFactory(p.size, p.infectedRatio);
  const target = p.kind === 'direct' ? { host: '127.0.0.1', port: stack.sink.port } : stack.smtp;
  const pids = p.kind === 'direct' ? { 'smtp-sink': stack.pids['smtp-sink']! } : stack.pids;
  await stack.sink.reset();
  await stack.s3counter.reset();
  scannerLog?.take();
  const { result, procs, machine } = await measured(pids, (r) => r.ok, async () => {
    const r = await runLoad({ host: target.host, port: target.port, concurrency: p.concurrency, maxMessages: p.maxMessages, maxSeconds: p.maxSeconds, message: (i) => factory.message(i) });
    if (awaitDelivery) await waitForArrivals(stack.sink, r.ok);
    return r;
  });
  const lat = [...result.latenciesMs].sort((a, b) => a - b);
  const errors = Object.values(result.errors).reduce((a, b) => a + b, 0);
  const out: PhaseResult = {
    id: p.id, kind: p.kind, size: p.size, concurrency: p.concurrency, infectedRatio: p.infectedRatio,
    count: result.ok, errors, errorDetail: result.errors, errorSamples: result.errorSamples,
    elapsedS: result.elapsedS, ratePerS: result.ok / result.elapsedS, p50Ms: percentile(lat, 50), p95Ms: percentile(lat, 95), p99Ms: percentile(lat, 99),
    procs, machine, infectedSent: result.infectedOk, sink: await stack.sink.stats(),
  };
  if (p.kind === 'mailwarden') {
    const n = Math.max(1, result.ok);
    out.mwCpuMsPerMsg = Object.entries(procs).reduce((a, [name, f]) => a + (MW.some((s) => name === s || name.startsWith(`${s}-`)) ? f.cpuMsPerUnit : 0), 0);
    if (s3Counted) {
      const s3 = await stack.s3counter.stats();
      out.s3PerMsg = Object.fromEntries(Object.entries(s3).map(([k, v]) => [k, v / n]));
    }
    if (scannerLog) {
      const lines = scannerLog.take();
      const ev = countEvents(lines);
      const analysed = lines.filter((l) => l.event === 'message.analysed');
      const sum = (k: string): number => analysed.reduce((a, l) => a + (Number(l[k]) || 0), 0);
      out.scanner = { scanned: sum('engineScans'), cacheHits: sum('cacheHits'), retries: ev['message.retry'] ?? 0, errors: ev['message.error'] ?? 0 };
    }
    out.infectedFound = out.sink?.notices;
  }
  return out;
}
