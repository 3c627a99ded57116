/**
 * `npm run bench -- --peers [--quick]`: Mailwarden side by side with ClamSMTP and Haraka
 * (+ haraka-plugin-clamd) on the same clamd and the same SMTP sink, driven with the same load in
 * interleaved rounds. Per row (workload × concurrency × connection mode): msgs/s, p50/p95
 * latency, CPU per message of every process of each deployment, and delivery correctness
 * (what reached the sink). Figures are medians over the rounds (2).
 *
 * The deployments, as measured:
 * - Mailwarden: smtp-gateway + scanner + reassembler + nats-server + s3rver + clamd
 * - ClamSMTP:   clamsmtpd + clamd
 * - Haraka:     haraka (one process, its default) + clamd
 * The sink and the load generator are measured apart and belong to no deployment.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import type { BenchStack } from './bench-stack.js';
import { MessageFactory } from './messages.js';
import { KB, MB } from './plan.js';
import { startClamsmtp, startHaraka, HARAKA_CLAMD_VERSION, HARAKA_VERSION, type Peer } from './peers.js';
import { waitForArrivals } from './phases.js';
import { ProcessMeter } from './proc.js';
import { median } from './report.js';
import { percentile, runLoad } from './smtp-load.js';

export type SystemName = 'mailwarden' | 'clamsmtp' | 'haraka';
export const SYSTEMS: SystemName[] = ['mailwarden', 'clamsmtp', 'haraka'];
const LABEL: Record<SystemName, string> = { mailwarden: 'Mailwarden', clamsmtp: 'ClamSMTP', haraka: 'Haraka' };
const MW_OWN = ['smtp-gateway', 'scanner', 'reassembler'];

export interface PeerWorkload {
  id: string;
  size: number;
  concurrency: number;
  /** `pool`: reused connections; `conn`: a new connection per message. */
  mode: 'pool' | 'conn';
  infectedRatio: number;
  maxMessages: number;
  maxSeconds: number;
}

export interface PeerPlan {
  rounds: number;
  workloads: PeerWorkload[];
}

const sizeName = (size: number): string => (size >= MB ? `${size / MB}m` : `${size / KB}k`);
const workload = (size: number, concurrency: number, mode: PeerWorkload['mode'], infectedRatio: number, maxSeconds: number): PeerWorkload => ({
  id: `${sizeName(size)}-c${concurrency}-${mode}-${infectedRatio > 0 ? 'eicar10' : 'clean'}`,
  size,
  concurrency,
  mode,
  infectedRatio,
  maxMessages: 5000,
  maxSeconds,
});

/** Full: 100 KB and 1 MB × c1/c8/c32 × pooled/per-message connections × clean/10 % EICAR. */
export function peerPlan(quick: boolean): PeerPlan {
  if (quick) {
    return {
      rounds: 2,
      workloads: [
        workload(100 * KB, 1, 'pool', 0.1, 4),
        workload(100 * KB, 8, 'pool', 0.1, 5),
        workload(100 * KB, 32, 'pool', 0.1, 5),
        workload(100 * KB, 8, 'conn', 0.1, 5),
        workload(100 * KB, 32, 'conn', 0.1, 5),
      ],
    };
  }
  const out: PeerWorkload[] = [];
  for (const size of [100 * KB, MB]) {
    for (const ratio of [0.1, 0]) {
      for (const c of [1, 8, 32]) for (const mode of ['pool', 'conn'] as const) out.push(workload(size, c, mode, ratio, size >= MB ? 7 : 5));
    }
  }
  return { rounds: 2, workloads: out };
}

export interface PeerRun {
  system: SystemName;
  workload: string;
  round: number;
  /** Final replies that were verdicts: 250, or 5xx to an infected message (Haraka). */
  completed: number;
  accepted: number;
  acceptedInfected: number;
  rejectedInfected: number;
  errors: number;
  errorDetail: Record<string, number>;
  errorSamples: string[];
  elapsedS: number;
  msgsPerS: number;
  p50Ms: number;
  p95Ms: number;
  /** CPU ms per completed message, per process (the deployment's, plus `smtp-sink` and `bench`). */
  cpuMsPerMsg: Record<string, number>;
  /** The deployment's processes (see the file comment). */
  systemCpuMsPerMsg: number;
  /** Mailwarden's own services only (gateway + scanner + reassembler). */
  ownCpuMsPerMsg?: number;
  sink: { messages: number; infected: number; notices: number };
  expectedArrivals: number;
  deliveryOk: boolean;
  deliveryNote: string;
}

interface Target {
  host: string;
  port: number;
  /** The deployment's processes, by name (clamd included). */
  pids: Record<string, number>;
}

async function runOne(system: SystemName, target: Target, w: PeerWorkload, round: number, stack: BenchStack): Promise<PeerRun> {
  const factory = new MessageFactory(w.size, w.infectedRatio);
  await stack.sink.reset();
  const meter = new ProcessMeter({ ...target.pids, 'smtp-sink': stack.sink.pid });
  meter.start();
  const self = process.cpuUsage();
  const r = await runLoad({
    host: target.host,
    port: target.port,
    concurrency: w.concurrency,
    maxMessages: w.maxMessages,
    maxSeconds: w.maxSeconds,
    message: (i) => factory.message(i),
    connectionPerMessage: w.mode === 'conn',
    infectedRejectIsVerdict: true,
    replyTimeoutMs: 30_000,
    rampMs: 10,
  });
  // ClamSMTP drops an infected message it answered 250 (Action: drop); Haraka answers 550 (not in
  // `ok`); Mailwarden delivers it with the attachment replaced by a notice.
  const expected = r.ok - (system === 'clamsmtp' ? r.infectedOk : 0);
  // Mailwarden delivers after its 250 (the pipeline): wait for the arrivals (inside the CPU window).
  await waitForArrivals(stack.sink, expected);
  await sleep(300); // late work (S3 deletes, acks, temp files)
  const sink = await stack.sink.stats();
  const own = process.cpuUsage(self);
  const cpu = meter.stop();
  const completed = r.ok + r.rejectedInfected;
  const n = Math.max(1, completed);
  const cpuMsPerMsg: Record<string, number> = {};
  for (const [name, m] of Object.entries(cpu)) cpuMsPerMsg[name] = (m.cpuS * 1000) / n;
  cpuMsPerMsg.bench = ((own.user + own.system) / 1000) / n;
  const systemCpu = Object.keys(target.pids).reduce((a, k) => a + (cpuMsPerMsg[k] ?? 0), 0);
  const lat = [...r.latenciesMs].sort((a, b) => a - b);
  const errors = Object.values(r.errors).reduce((a, b) => a + b, 0);
  const got = { messages: sink.messages ?? 0, infected: sink.infected ?? 0, notices: sink.notices ?? 0 };
  const problems: string[] = [];
  if (got.messages !== expected) problems.push(`sink got ${got.messages}, expected ${expected}`);
  if (got.infected) problems.push(`${got.infected} infected message(s) reached the sink`);
  if (system === 'mailwarden' && got.notices !== r.infectedOk) problems.push(`${got.notices} removal notices for ${r.infectedOk} infected`);
  const infectedSent = r.infectedOk + r.rejectedInfected;
  const verdict =
    system === 'haraka' ? `${r.rejectedInfected} infected answered 5xx` : system === 'clamsmtp' ? `${r.infectedOk} infected answered 250 and dropped` : `${r.infectedOk} infected delivered with a notice`;
  return {
    system,
    workload: w.id,
    round,
    completed,
    accepted: r.ok,
    acceptedInfected: r.infectedOk,
    rejectedInfected: r.rejectedInfected,
    errors,
    errorDetail: r.errors,
    errorSamples: r.errorSamples,
    elapsedS: r.elapsedS,
    msgsPerS: completed / r.elapsedS,
    p50Ms: percentile(lat, 50),
    p95Ms: percentile(lat, 95),
    cpuMsPerMsg,
    systemCpuMsPerMsg: systemCpu,
    ...(system === 'mailwarden' ? { ownCpuMsPerMsg: MW_OWN.reduce((a, k) => a + (cpuMsPerMsg[k] ?? 0), 0) } : {}),
    sink: got,
    expectedArrivals: expected,
    deliveryOk: problems.length === 0 && errors === 0,
    deliveryNote: (problems.length ? problems.join('; ') : `${got.messages} arrived`) + (infectedSent ? `; ${verdict}` : '') + (errors ? `; errors ${JSON.stringify(r.errors)}` : ''),
  };
}


export interface PeerRow {
  workload: PeerWorkload;
  bySystem: Partial<Record<SystemName, { msgsPerS: number; p50Ms: number; p95Ms: number; cpuMsPerMsg: number; ownCpuMsPerMsg?: number; rates: number[]; deliveryOk: boolean; notes: string[] }>>;
}

export interface PeerTarget {
  name: string;
  value: string;
  threshold: string;
  status: 'met' | 'missed' | 'not measured';
}

export interface PeersReport {
  startedAt: string;
  durationS: number;
  mode: string;
  machine: Record<string, string | number>;
  versions: Record<string, string>;
  deployments: Record<SystemName, string>;
  rows: PeerRow[];
  targets: PeerTarget[];
  runs: PeerRun[];
  notes: string[];
}

export function aggregatePeers(plan: PeerPlan, runs: PeerRun[]): PeerRow[] {
  return plan.workloads.map((w) => {
    const bySystem: PeerRow['bySystem'] = {};
    for (const s of SYSTEMS) {
      const rs = runs.filter((r) => r.workload === w.id && r.system === s);
      if (!rs.length) continue;
      const own = rs.map((r) => r.ownCpuMsPerMsg).filter((x): x is number => x !== undefined);
      bySystem[s] = {
        msgsPerS: median(rs.map((r) => r.msgsPerS)),
        p50Ms: median(rs.map((r) => r.p50Ms)),
        p95Ms: median(rs.map((r) => r.p95Ms)),
        cpuMsPerMsg: median(rs.map((r) => r.systemCpuMsPerMsg)),
        ...(own.length ? { ownCpuMsPerMsg: median(own) } : {}),
        rates: rs.map((r) => r.msgsPerS),
        deliveryOk: rs.every((r) => r.deliveryOk),
        notes: rs.map((r) => `round ${r.round + 1}: ${r.deliveryNote}`),
      };
    }
    return { workload: w, bySystem };
  });
}

export function peerTargets(rows: PeerRow[]): PeerTarget[] {
  const row = (id: string): PeerRow | undefined => rows.find((r) => r.workload.id === id);
  const out: PeerTarget[] = [];
  const ratio = (name: string, id: string): void => {
    const r = row(id);
    const mw = r?.bySystem.mailwarden;
    const cs = r?.bySystem.clamsmtp;
    if (!mw || !cs) return void out.push({ name, value: '–', threshold: '≥ 1.0× ClamSMTP', status: 'not measured' });
    const x = mw.msgsPerS / cs.msgsPerS;
    out.push({ name, value: `${mw.msgsPerS.toFixed(1)} vs ${cs.msgsPerS.toFixed(1)} msgs/s = ${x.toFixed(2)}×`, threshold: '≥ 1.0× ClamSMTP', status: x >= 1 ? 'met' : 'missed' });
  };
  ratio('throughput: 100 KB, c32 (pooled, 10 % EICAR)', '100k-c32-pool-eicar10');
  ratio('throughput: 100 KB, c8 (pooled, 10 % EICAR)', '100k-c8-pool-eicar10');
  ratio('throughput: 1 MB, c8 (pooled, 10 % EICAR)', '1m-c8-pool-eicar10');
  {
    const r = row('100k-c1-pool-eicar10');
    const mw = r?.bySystem.mailwarden;
    const cs = r?.bySystem.clamsmtp;
    if (!mw || !cs) out.push({ name: 'latency: p50 at c1, 100 KB', value: '–', threshold: '≤ ClamSMTP', status: 'not measured' });
    else out.push({ name: 'latency: p50 at c1, 100 KB', value: `${mw.p50Ms.toFixed(1)} vs ${cs.p50Ms.toFixed(1)} ms`, threshold: '≤ ClamSMTP', status: mw.p50Ms <= cs.p50Ms ? 'met' : 'missed' });
  }
  {
    const r = row('100k-c32-pool-eicar10') ?? row('100k-c8-pool-eicar10');
    const mw = r?.bySystem.mailwarden;
    const cs = r?.bySystem.clamsmtp;
    if (!mw?.ownCpuMsPerMsg) out.push({ name: 'efficiency: Mailwarden services CPU per 100 KB message', value: '–', threshold: '≤ 5 ms', status: 'not measured' });
    else out.push({ name: `efficiency: Mailwarden services CPU per 100 KB message (${r!.workload.id})`, value: `${mw.ownCpuMsPerMsg.toFixed(1)} ms`, threshold: '≤ 5 ms', status: mw.ownCpuMsPerMsg <= 5 ? 'met' : 'missed' });
    if (!mw || !cs) out.push({ name: 'efficiency: whole deployment CPU per message', value: '–', threshold: '≤ 1.5 × ClamSMTP+clamd', status: 'not measured' });
    else {
      const x = mw.cpuMsPerMsg / cs.cpuMsPerMsg;
      out.push({
        name: `efficiency: whole deployment CPU per message (${r!.workload.id})`,
        value: `${mw.cpuMsPerMsg.toFixed(1)} vs ${cs.cpuMsPerMsg.toFixed(1)} ms = ${x.toFixed(2)}×`,
        threshold: '≤ 1.5 × ClamSMTP+clamd',
        status: x <= 1.5 ? 'met' : 'missed',
      });
    }
  }
  return out;
}

const f1 = (x: number | undefined): string => (x === undefined || !Number.isFinite(x) ? '–' : x >= 100 ? x.toFixed(0) : x.toFixed(1));
const ratioText = (a: number | undefined, b: number | undefined): string => (a === undefined || b === undefined || !b ? '–' : `${(a / b).toFixed(2)}×`);

export function renderPeersMarkdown(rep: PeersReport): string {
  const lines: string[] = [];
  lines.push(`## Side by side: Mailwarden, ClamSMTP, Haraka (${rep.mode})`, '');
  lines.push(
    `${rep.machine.cpus} × ${rep.machine.model}, Node ${rep.machine.node}, commit ${rep.machine.commit}, ${rep.startedAt}, ${rep.durationS.toFixed(0)} s. ` +
      `Versions: ${Object.entries(rep.versions).map(([k, v]) => `${k} ${v}`).join(', ')}. Everything (load generator, sink, every gateway, clamd) shares this machine; ` +
      `all three use the same clamd and deliver to the same SMTP sink. Medians of ${rep.rows[0] ? Math.max(...Object.values(rep.rows[0].bySystem).map((s) => s.rates.length)) : 0} interleaved rounds.`,
    '',
  );
  lines.push('CPU = ms of CPU time per message of all the deployment\'s processes: ' + SYSTEMS.map((s) => `${LABEL[s]} = ${rep.deployments[s]}`).join('; ') + '. "MW own" = the Mailwarden services alone. Latency: MAIL FROM → final reply (pooled), connect → final reply (conn = a new connection per message). msgs/s counts verdicts (Haraka answers 550 to infected mail).', '');
  lines.push('| workload | conc | conn | msgs/s MW | msgs/s ClamSMTP | msgs/s Haraka | MW / ClamSMTP | MW / Haraka | p50 ms MW / CS / H | p95 ms MW / CS / H | CPU ms/msg MW (own) | CPU ClamSMTP | CPU Haraka | delivery |');
  lines.push('|---|---|---|---|---|---|---|---|---|---|---|---|---|---|');
  for (const r of rep.rows) {
    const w = r.workload;
    const mw = r.bySystem.mailwarden;
    const cs = r.bySystem.clamsmtp;
    const h = r.bySystem.haraka;
    const delivery = SYSTEMS.every((s) => r.bySystem[s]?.deliveryOk ?? true) ? 'ok' : `**check** (${SYSTEMS.filter((s) => r.bySystem[s] && !r.bySystem[s]!.deliveryOk).map((s) => LABEL[s]).join(', ')})`;
    lines.push(
      `| ${w.size >= MB ? `${w.size / MB} MB` : `${w.size / KB} KB`}${w.infectedRatio > 0 ? ', 10% EICAR' : ', clean'} | ${w.concurrency} | ${w.mode} | ${f1(mw?.msgsPerS)} | ${f1(cs?.msgsPerS)} | ${f1(h?.msgsPerS)} | ` +
        `${ratioText(mw?.msgsPerS, cs?.msgsPerS)} | ${ratioText(mw?.msgsPerS, h?.msgsPerS)} | ${f1(mw?.p50Ms)} / ${f1(cs?.p50Ms)} / ${f1(h?.p50Ms)} | ${f1(mw?.p95Ms)} / ${f1(cs?.p95Ms)} / ${f1(h?.p95Ms)} | ` +
        `${f1(mw?.cpuMsPerMsg)} (${f1(mw?.ownCpuMsPerMsg)}) | ${f1(cs?.cpuMsPerMsg)} | ${f1(h?.cpuMsPerMsg)} | ${delivery} |`,
    );
  }
  lines.push('', '### Targets (issue 12)', '', '| target | this run | threshold | status |', '|---|---|---|---|');
  for (const t of rep.targets) lines.push(`| ${t.name} | ${t.value} | ${t.threshold} | **${t.status}** |`);
  lines.push('', '### Delivery (what reached the sink)', '');
  lines.push('ClamSMTP (`Action: drop`) answers 250 to an infected message and drops it; Haraka answers 550; Mailwarden answers 250 and delivers the message with the attachment replaced by a notice. No message carrying the infected attachment may reach the sink.', '');
  for (const r of rep.rows) {
    for (const s of SYSTEMS) {
      const b = r.bySystem[s];
      if (b && !b.deliveryOk) lines.push(`- ${r.workload.id} ${LABEL[s]}: ${b.notes.join(' | ')}`);
    }
  }
  if (rep.rows.every((r) => SYSTEMS.every((s) => r.bySystem[s]?.deliveryOk ?? true))) {
    const sample = rep.rows.find((r) => r.workload.infectedRatio > 0);
    lines.push(`All rows: every accepted clean message arrived once, no infected attachment arrived, no errors.${sample ? ` E.g. ${sample.workload.id}: ${SYSTEMS.map((s) => `${LABEL[s]} ${sample.bySystem[s]?.notes[0]?.replace(/^round 1: /, '') ?? '–'}`).join('; ')}.` : ''}`);
  }
  if (rep.notes.length) lines.push('', ...rep.notes.map((n) => `- ${n}`));
  return lines.join('\n') + '\n';
}

export interface PeersBenchOptions {
  quick: boolean;
  stateDir: string;
  only?: string[];
  log: (msg: string) => void;
}

/** Starts the peers next to the running bench stack, runs the interleaved rounds, stops the peers. */
export async function runPeers(stack: BenchStack, opts: PeersBenchOptions): Promise<{ plan: PeerPlan; runs: PeerRun[]; notes: string[] }> {
  const plan = peerPlan(opts.quick);
  if (opts.only) plan.workloads = plan.workloads.filter((w) => opts.only!.some((o) => w.id.includes(o)));
  if (!stack.clamdSocket) throw new Error('--peers needs clamd\'s unix socket (the local stack\'s clamd, or BENCH_CLAMD_SOCKET with --stack-from-env)');
  const clamdPid = stack.pids.clamd;
  if (!clamdPid) throw new Error('--peers: no clamd pid (BENCH_PIDS=clamd=… with --stack-from-env)');
  const sink = { host: '127.0.0.1', port: stack.sink.port };
  const peers: Peer[] = [];
  const notes: string[] = [];
  try {
    peers.push(await startClamsmtp({ stateDir: opts.stateDir, clamdSocket: stack.clamdSocket, sink }));
    peers.push(await startHaraka({ stateDir: opts.stateDir, clamdSocket: stack.clamdSocket, sink }));
    opts.log(`peers up: ${peers.map((p) => `${p.name} ${p.host}:${p.port} (${Object.entries(p.pids).map(([k, v]) => `${k}=${v}`).join(' ')})`).join(', ')}`);
    const mwPids: Record<string, number> = {};
    for (const name of [...MW_OWN, 'nats', 's3rver', 'clamd']) if (stack.pids[name]) mwPids[name] = stack.pids[name];
    const targets: Record<SystemName, Target> = {
      mailwarden: { ...stack.smtp, pids: mwPids },
      clamsmtp: { host: peers[0]!.host, port: peers[0]!.port, pids: { ...peers[0]!.pids, clamd: clamdPid } },
      haraka: { host: peers[1]!.host, port: peers[1]!.port, pids: { ...peers[1]!.pids, clamd: clamdPid } },
    };
    // Warm-up (JIT, connection pools): not measured.
    const warm = new MessageFactory(100 * KB, 0.1);
    for (const s of SYSTEMS) {
      const w = await runLoad({ ...targets[s], concurrency: 4, maxMessages: 60, maxSeconds: 20, message: (i) => warm.message(i), infectedRejectIsVerdict: true });
      opts.log(`warm-up ${s}: ${w.ok} ok, ${w.rejectedInfected} infected rejected, errors ${JSON.stringify(w.errors)}`);
      if (w.ok === 0) throw new Error(`warm-up of ${s} failed: ${w.errorSamples.join(' | ')}`);
    }
    const runs: PeerRun[] = [];
    for (let round = 0; round < plan.rounds; round++) {
      for (const [wi, w] of plan.workloads.entries()) {
        // Rotate the order so no system always runs right after another one's load.
        const order = SYSTEMS.map((_, i) => SYSTEMS[(i + wi + round) % SYSTEMS.length]!);
        for (const s of order) {
          await sleep(500);
          const r = await runOne(s, targets[s], w, round, stack);
          runs.push(r);
          opts.log(
            `round ${round + 1} ${w.id} ${s}: ${r.completed} in ${r.elapsedS.toFixed(1)} s = ${r.msgsPerS.toFixed(1)}/s, p50 ${r.p50Ms.toFixed(1)} p95 ${r.p95Ms.toFixed(1)} ms, ` +
              `CPU ${r.systemCpuMsPerMsg.toFixed(1)} ms/msg${r.ownCpuMsPerMsg !== undefined ? ` (own ${r.ownCpuMsPerMsg.toFixed(1)})` : ''}; ${r.deliveryOk ? 'delivery ok' : 'DELIVERY CHECK'}: ${r.deliveryNote}` +
              (r.errorSamples.length ? ` [${r.errorSamples.join(' | ')}]` : ''),
          );
        }
      }
    }
    return { plan, runs, notes };
  } finally {
    for (const p of peers.reverse()) await p.stop().catch(() => undefined);
  }
}

export const PEER_VERSIONS = { Haraka: HARAKA_VERSION, 'haraka-plugin-clamd': HARAKA_CLAMD_VERSION };
export const DEPLOYMENTS: Record<SystemName, string> = {
  mailwarden: 'smtp-gateway + scanner + reassembler + nats-server + s3rver + clamd',
  clamsmtp: 'clamsmtpd + clamd',
  haraka: 'haraka + clamd',
};
