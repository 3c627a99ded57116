/**
 * `npm run bench -- --scaling [--quick]`: does adding scanner-tier processes (scanner + clamd)
 * raise throughput on this machine, and where does it stop?
 *
 * One stack (the bench stack: NATS, s3rver, clamd, sink, gateway, reassembler) plus a second
 * clamd started here with the same configuration; the scanner tier is replaced between
 * configurations (`BenchStack.setScanners`), everything else keeps running:
 *
 * - `1s-1c`      1 scanner → clamd                          (the baseline, as `npm start` runs)
 * - `1s-1c-x8`   1 scanner with SCANNER_CONCURRENCY=8 → clamd (as many messages in flight as two
 *                scanners: separates "more processes" from "more concurrency"; full run only)
 * - `1s-2c-rr`   1 scanner, CLAMD_BALANCE=round-robin over both clamds (full run only)
 * - `2s-2c-own`  2 scanners, each with its own clamd first and the other as failover
 * - `2s-2c-rr`   2 scanners, both round-robin over both clamds
 *
 * The same pooled SMTP load for each (unique random attachments, clean): 100 KB at concurrency 32
 * (and 1 MB at concurrency 8 in the full run), configurations interleaved over the rounds; plus
 * the raw INSTREAM ceiling of one clamd vs two. Per phase: msgs/s, p50/p95, CPU per message and
 * cores used per process group, and how busy the whole machine was (/proc/stat), so CPU
 * saturation — ours, and other work on a shared box — is visible.
 */
import { readFileSync } from 'node:fs';
import { loadavg } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { CLAMAV_DEPLOY_DIR, startClamd, type RunningClamd } from '@mailwarden/clamd';
import type { BenchStack } from './bench-stack.js';
import { ceilingPhase, loadPhase, warmUp } from './phases.js';
import { KB, MB, type CeilingPhase, type LoadPhase } from './plan.js';
import { MachineMeter } from './proc.js';
import { median, type MachineFigures, type PhaseResult } from './report.js';

export interface TierConfig {
  id: string;
  label: string;
  scanners: number;
  clamds: number;
  /** Extra environment of each scanner process, given the two clamd addresses. */
  scannerEnv: (a: string, b: string) => Record<string, string>[];
}

export const TIER_CONFIGS: TierConfig[] = [
  { id: '1s-1c', label: '1 scanner → 1 clamd', scanners: 1, clamds: 1, scannerEnv: (a) => [{ CLAMD_ADDRESSES: a }] },
  { id: '1s-1c-x8', label: '1 scanner (SCANNER_CONCURRENCY=8) → 1 clamd', scanners: 1, clamds: 1, scannerEnv: (a) => [{ CLAMD_ADDRESSES: a, SCANNER_CONCURRENCY: '8' }] },
  { id: '1s-2c-rr', label: '1 scanner, round-robin over 2 clamds', scanners: 1, clamds: 2, scannerEnv: (a, b) => [{ CLAMD_ADDRESSES: `${a},${b}`, CLAMD_BALANCE: 'round-robin' }] },
  {
    id: '2s-2c-own',
    label: '2 scanners, each its own clamd (the other as failover)',
    scanners: 2,
    clamds: 2,
    scannerEnv: (a, b) => [{ CLAMD_ADDRESSES: `${a},${b}` }, { CLAMD_ADDRESSES: `${b},${a}` }],
  },
  {
    id: '2s-2c-rr',
    label: '2 scanners, both round-robin over 2 clamds',
    scanners: 2,
    clamds: 2,
    scannerEnv: (a, b) => [
      { CLAMD_ADDRESSES: `${a},${b}`, CLAMD_BALANCE: 'round-robin' },
      { CLAMD_ADDRESSES: `${a},${b}`, CLAMD_BALANCE: 'round-robin' },
    ],
  },
];

const BASELINE = '1s-1c';

export interface ScalingPlan {
  rounds: number;
  configs: TierConfig[];
  workloads: LoadPhase[];
  /** Raw INSTREAM ceilings: on clamd alone, and round-robin over both. */
  ceilings: { phase: CeilingPhase; clamds: 1 | 2 }[];
}

const workload = (size: number, concurrency: number, maxMessages: number, maxSeconds: number): LoadPhase => ({
  id: `${size >= MB ? `${size / MB}m` : `${size / KB}k`}-c${concurrency}-clean`,
  kind: 'mailwarden',
  size,
  concurrency,
  infectedRatio: 0,
  maxMessages,
  maxSeconds,
});

const ceiling = (connections: number, clamds: 1 | 2, maxSeconds: number): { phase: CeilingPhase; clamds: 1 | 2 } => ({
  phase: { id: `clamd-100k-x${connections}-${clamds}c`, kind: 'clamd', size: 100 * KB, connections, infectedRatio: 0, maxScans: 20_000, maxSeconds },
  clamds,
});

export function scalingPlan(quick: boolean): ScalingPlan {
  const pick = (ids: string[]): TierConfig[] => TIER_CONFIGS.filter((c) => ids.includes(c.id));
  if (quick) {
    return {
      rounds: 1,
      configs: pick(['1s-1c', '2s-2c-own', '2s-2c-rr']),
      workloads: [workload(100 * KB, 32, 5000, 8)],
      ceilings: [ceiling(8, 1, 3), ceiling(8, 2, 3)],
    };
  }
  return {
    rounds: 2,
    configs: TIER_CONFIGS,
    workloads: [workload(100 * KB, 32, 10_000, 12), workload(MB, 8, 2000, 12)],
    ceilings: [ceiling(8, 1, 4), ceiling(8, 2, 4), ceiling(16, 2, 4)],
  };
}

/** Process groups of the report: a name matches its group's name or `<name>-<n>`. */
export const GROUPS: { name: string; procs: string[] }[] = [
  { name: 'gateway', procs: ['smtp-gateway'] },
  { name: 'scanners', procs: ['scanner'] },
  { name: 'clamd', procs: ['clamd'] },
  { name: 'reassembler', procs: ['reassembler'] },
  { name: 'nats', procs: ['nats'] },
  { name: 's3rver', procs: ['s3rver'] },
  { name: 'sink + load gen.', procs: ['smtp-sink', 'bench', 's3-counter'] },
];
const inGroup = (g: (typeof GROUPS)[number], proc: string): boolean => g.procs.some((p) => proc === p || proc.startsWith(`${p}-`));

/** CPU per name (process or group): ms per message, and cores (CPU s per s of the phase). */
export type CpuFigures = Record<string, { msPerMsg: number; cores: number }>;

export interface ScalingRunFigures {
  config: string;
  workload: string;
  round: number;
  msgsPerS: number;
  p50Ms: number;
  p95Ms: number;
  errors: number;
  delivered: number;
  accepted: number;
  /** Per process group. */
  groups: CpuFigures;
  /** Per process (scanner, scanner-2, clamd, clamd-2, …). */
  procs: CpuFigures;
  /** Every measured process together, and the whole machine (ours or not), in cores. */
  measuredCores: number;
  machine: MachineFigures;
}

export interface ScalingRow {
  config: TierConfig;
  workload: LoadPhase;
  rounds: number;
  msgsPerS: number;
  rates: number[];
  /** msgs/s over the baseline's (`1s-1c`) in the same workload, medians. */
  factor: number;
  /** Medians over the rounds from here on. */
  p50Ms: number;
  p95Ms: number;
  groups: CpuFigures;
  procs: CpuFigures;
  measuredCores: number;
  machineBusyCores: number;
  cores: number;
  deliveryOk: boolean;
}

export interface ScalingReport {
  startedAt: string;
  durationS: number;
  mode: string;
  machine: Record<string, string | number>;
  /** Before the stack started: load average and the machine's busy cores over a 3 s sample. */
  boxBefore: { loadavg: number[]; busyCores: number };
  boxAfter: { loadavg: number[] };
  clamd: { maxThreads: string; maxConnectionQueueLength: string };
  scannerDefaults: { SCANNER_CONCURRENCY: string; SCANNER_PART_CONCURRENCY: string };
  rows: ScalingRow[];
  ceilings: PhaseResult[];
  runs: ScalingRunFigures[];
  notes: string[];
}

function figures(config: string, w: LoadPhase, round: number, r: PhaseResult): ScalingRunFigures {
  const elapsed = r.machine?.elapsedS ?? r.elapsedS;
  const groups: ScalingRunFigures['groups'] = {};
  for (const g of GROUPS) {
    const members = Object.entries(r.procs).filter(([n]) => inGroup(g, n));
    const cpuS = members.reduce((a, [, f]) => a + (Number.isFinite(f.cpuS) ? f.cpuS : 0), 0);
    groups[g.name] = { msPerMsg: (cpuS * 1000) / Math.max(1, r.count), cores: cpuS / elapsed };
  }
  const procs: ScalingRunFigures['procs'] = {};
  for (const [n, f] of Object.entries(r.procs)) procs[n] = { msPerMsg: f.cpuMsPerUnit, cores: f.cpuS / elapsed };
  return {
    config,
    workload: w.id,
    round,
    msgsPerS: r.ratePerS,
    p50Ms: r.p50Ms,
    p95Ms: r.p95Ms ?? NaN,
    errors: r.errors,
    delivered: r.sink?.messages ?? 0,
    accepted: r.count,
    groups,
    procs,
    measuredCores: Object.values(groups).reduce((a, g) => a + g.cores, 0),
    machine: r.machine ?? { busyCores: NaN, cores: NaN, elapsedS: elapsed },
  };
}

export function aggregateScaling(plan: ScalingPlan, runs: ScalingRunFigures[]): ScalingRow[] {
  const rows: ScalingRow[] = [];
  const medianOf = (rs: ScalingRunFigures[], pick: (r: ScalingRunFigures) => CpuFigures): CpuFigures => {
    const names = [...new Set(rs.flatMap((r) => Object.keys(pick(r))))];
    return Object.fromEntries(
      names.map((n) => [n, { msPerMsg: median(rs.map((r) => pick(r)[n]?.msPerMsg ?? NaN)), cores: median(rs.map((r) => pick(r)[n]?.cores ?? NaN)) }]),
    );
  };
  for (const w of plan.workloads) {
    for (const c of plan.configs) {
      const rs = runs.filter((r) => r.config === c.id && r.workload === w.id);
      if (!rs.length) continue;
      rows.push({
        config: c,
        workload: w,
        rounds: rs.length,
        msgsPerS: median(rs.map((r) => r.msgsPerS)),
        rates: rs.map((r) => r.msgsPerS),
        factor: NaN,
        p50Ms: median(rs.map((r) => r.p50Ms)),
        p95Ms: median(rs.map((r) => r.p95Ms)),
        groups: medianOf(rs, (r) => r.groups),
        procs: medianOf(rs, (r) => r.procs),
        measuredCores: median(rs.map((r) => r.measuredCores)),
        machineBusyCores: median(rs.map((r) => r.machine.busyCores)),
        cores: rs[0]!.machine.cores,
        deliveryOk: rs.every((r) => r.errors === 0 && r.delivered === r.accepted),
      });
    }
    const base = rows.find((r) => r.workload.id === w.id && r.config.id === BASELINE);
    for (const r of rows) if (r.workload.id === w.id && base) r.factor = r.msgsPerS / base.msgsPerS;
  }
  return rows;
}

const f1 = (x: number | undefined): string => (x === undefined || !Number.isFinite(x) ? '–' : x >= 100 ? x.toFixed(0) : x.toFixed(1));
const f2 = (x: number | undefined): string => (x === undefined || !Number.isFinite(x) ? '–' : x.toFixed(2));

export function renderScalingMarkdown(rep: ScalingReport): string {
  const L: string[] = [];
  L.push(`## Horizontal scaling: the scanner tier resized (${rep.mode})`, '');
  L.push(
    `${rep.machine.cpus} × ${rep.machine.model}, Node ${rep.machine.node}, commit ${rep.machine.commit}, ${rep.startedAt}, ${rep.durationS.toFixed(0)} s. ` +
      `Box before the run: load average ${rep.boxBefore.loadavg.map((x) => x.toFixed(2)).join(' / ')}, ${f2(rep.boxBefore.busyCores)} of ${rep.machine.cpus} cores busy (3 s sample, nothing of ours running); ` +
      `after: load average ${rep.boxAfter.loadavg.map((x) => x.toFixed(2)).join(' / ')}. ` +
      `Each clamd: MaxThreads ${rep.clamd.maxThreads}, MaxConnectionQueueLength ${rep.clamd.maxConnectionQueueLength} (deploy/clamav/clamd.conf.template), the project's tiny signature database. ` +
      `Each scanner: SCANNER_CONCURRENCY ${rep.scannerDefaults.SCANNER_CONCURRENCY}, SCANNER_PART_CONCURRENCY ${rep.scannerDefaults.SCANNER_PART_CONCURRENCY} unless the configuration says otherwise. ` +
      `One gateway, one reassembler, one nats-server, one s3rver throughout; the load generator and the sink on the same cores. ` +
      `Load: pooled SMTP connections, unique random attachments (neither cache helps), clean. ${rep.rows[0] ? `Medians of ${Math.max(...rep.rows.map((r) => r.rounds))} interleaved round(s).` : ''}`,
    '',
  );
  L.push(
    'factor = msgs/s over `1s-1c` in the same workload. CPU: ms of CPU time per message per process group (cores busy = CPU s per s of the phase). ' +
      '"ours" = every measured process together; "box" = the whole machine from /proc/stat (the difference is other work on the machine).',
    '',
  );
  L.push(
    `| workload | configuration | msgs/s | factor | p50 / p95 ms | ${GROUPS.map((g) => `${g.name} ms/msg`).join(' | ')} | total ms/msg | CPU-bound max msgs/s (${rep.machine.cpus} cores × 1000 / total) | per process (ms/msg) | busiest process (cores) | cores busy: ours / box (of ${rep.machine.cpus}) | delivery |`,
  );
  L.push(`|---|---|---|---|---|${GROUPS.map(() => '---|').join('')}---|---|---|---|---|---|`);
  for (const r of rep.rows) {
    const total = Object.values(r.groups).reduce((a, g) => a + g.msPerMsg, 0);
    const perProc = Object.entries(r.procs)
      .filter(([n]) => /^(scanner|clamd)(-\d+)?$/.test(n))
      .sort(([a], [b]) => a.localeCompare(b))
      .map(([n, v]) => `${n} ${f1(v.msPerMsg)}`)
      .join(', ');
    const busiest = Object.entries(r.procs)
      .filter(([n]) => n !== 'bench')
      .sort(([, a], [, b]) => b.cores - a.cores)[0];
    L.push(
      `| ${r.workload.size >= MB ? `${r.workload.size / MB} MB` : `${r.workload.size / KB} KB`} c${r.workload.concurrency} | \`${r.config.id}\` ${r.config.label} | ${f1(r.msgsPerS)}${r.rates.length > 1 ? ` (${r.rates.map(f1).join(', ')})` : ''} | ` +
        `**${f2(r.factor)}×** | ${f1(r.p50Ms)} / ${f1(r.p95Ms)} | ${GROUPS.map((g) => f1(r.groups[g.name]?.msPerMsg)).join(' | ')} | ${f1(total)} | ${f1((r.cores * 1000) / total)} | ${perProc} | ` +
        `${busiest ? `${busiest[0]} ${f2(busiest[1].cores)}` : '–'} | ${f2(r.measuredCores)} / ${f2(r.machineBusyCores)} | ${r.deliveryOk ? 'ok' : '**check**'} |`,
    );
  }
  if (rep.ceilings.length) {
    L.push('', '### Raw clamd INSTREAM ceiling: one clamd vs two', '');
    L.push('The same 100 KB parts streamed straight into clamd by the bench (no SMTP, S3 or NATS), one connection per scan; two clamds: round-robin over both.', '');
    L.push('| phase | clamds | connections | scans/s | p50 / p95 ms | clamd CPU ms/scan (per process) | load generator ms/scan | cores busy: ours / box |', '|---|---|---|---|---|---|---|---|');
    for (const c of rep.ceilings) {
      const clamds = Object.entries(c.procs).filter(([n]) => n.startsWith('clamd'));
      const cores = Object.values(c.procs).reduce((a, p) => a + p.cpuS, 0) / (c.machine?.elapsedS ?? c.elapsedS);
      L.push(
        `| ${c.id} | ${clamds.length} | ${c.concurrency} | ${f1(c.ratePerS)} | ${f1(c.p50Ms)} / ${f1(c.p95Ms)} | ${f1(clamds.reduce((a, [, p]) => a + p.cpuMsPerUnit, 0))} (${clamds.map(([n, p]) => `${n} ${f1(p.cpuMsPerUnit)}`).join(', ')}) | ` +
          `${f1(c.procs.bench?.cpuMsPerUnit)} | ${f2(cores)} / ${f2(c.machine?.busyCores)} |`,
      );
    }
  }
  const bad = rep.runs.filter((r) => r.errors || r.delivered !== r.accepted);
  if (bad.length) L.push('', ...bad.map((r) => `- round ${r.round + 1} ${r.workload} \`${r.config}\`: ${r.errors} errors, ${r.accepted} accepted, ${r.delivered} reached the sink`));
  if (rep.notes.length) L.push('', ...rep.notes.map((n) => `- ${n}`));
  return L.join('\n') + '\n';
}

function clamdDirective(name: string): string {
  const m = new RegExp(`^${name}\\s+(\\S+)`, 'm').exec(readFileSync(join(CLAMAV_DEPLOY_DIR, 'clamd.conf.template'), 'utf8'));
  return m?.[1] ?? '?';
}

/** The box before anything of ours runs: load average and busy cores over `ms`. */
export async function sampleBox(ms = 3000): Promise<{ loadavg: number[]; busyCores: number }> {
  const m = new MachineMeter();
  m.start();
  await sleep(ms);
  return { loadavg: loadavg(), busyCores: m.stop().busyCores };
}

export interface ScalingOptions {
  quick: boolean;
  stateDir: string;
  log: (msg: string) => void;
}

/** Starts the second clamd, runs every configuration × workload in interleaved rounds, stops it. */
export async function runScaling(stack: BenchStack, opts: ScalingOptions): Promise<{ plan: ScalingPlan; runs: ScalingRunFigures[]; ceilings: PhaseResult[]; clamd: ScalingReport['clamd'] }> {
  const plan = scalingPlan(opts.quick);
  const a = stack.clamdAddresses.split(',')[0]!.trim();
  let second: RunningClamd | undefined;
  try {
    second = await startClamd({ stateDir: join(opts.stateDir, 'clamd-2') });
    stack.pids['clamd-2'] = second.pid;
    const b = second.address;
    opts.log(`second clamd up: ${b} (pid ${second.pid}); first: ${a} (pid ${stack.pids.clamd})`);

    const ceilings: PhaseResult[] = [];
    for (const c of plan.ceilings) {
      await sleep(500);
      const pids: Record<string, number> = c.clamds === 1 ? { clamd: stack.pids.clamd! } : { clamd: stack.pids.clamd!, 'clamd-2': second.pid };
      const r = await ceilingPhase(stack, c.phase, c.clamds === 1 ? { addresses: a, pids } : { addresses: `${a},${b}`, balance: 'round-robin', pids });
      ceilings.push(r);
      opts.log(`${c.phase.id}: ${r.count} scans in ${r.elapsedS.toFixed(1)} s = ${r.ratePerS.toFixed(1)}/s, box ${r.machine?.busyCores.toFixed(2)} cores busy`);
    }

    const runs: ScalingRunFigures[] = [];
    for (let round = 0; round < plan.rounds; round++) {
      // Rotate the order of the configurations so none always runs first in a round.
      const order = plan.configs.map((_, i) => plan.configs[(i + round) % plan.configs.length]!);
      for (const c of order) {
        await stack.setScanners(c.scannerEnv(a, b));
        await warmUp(stack, opts.log, `${c.id}`);
        for (const w of plan.workloads) {
          await sleep(1000);
          const r = await loadPhase(stack, w, undefined, false, true);
          const fig = figures(c.id, w, round, r);
          runs.push(fig);
          opts.log(
            `round ${round + 1} ${w.id} ${c.id}: ${r.count} in ${r.elapsedS.toFixed(1)} s = ${r.ratePerS.toFixed(1)}/s, p50 ${r.p50Ms.toFixed(0)} p95 ${(r.p95Ms ?? NaN).toFixed(0)} ms, ` +
              `cores ours ${fig.measuredCores.toFixed(2)} / box ${fig.machine.busyCores.toFixed(2)}; ` +
              GROUPS.map((g) => `${g.name} ${fig.groups[g.name]!.msPerMsg.toFixed(1)}`).join(', ') +
              ` ms/msg; delivered ${fig.delivered}/${fig.accepted}` +
              (r.errors ? `; errors ${JSON.stringify(r.errorDetail)} [${r.errorSamples.join(' | ')}]` : ''),
          );
        }
      }
    }
    await stack.setScanners([{}]); // back to the stack's own single scanner
    return { plan, runs, ceilings, clamd: { maxThreads: clamdDirective('MaxThreads'), maxConnectionQueueLength: clamdDirective('MaxConnectionQueueLength') } };
  } finally {
    delete stack.pids['clamd-2'];
    await second?.stop();
  }
}
