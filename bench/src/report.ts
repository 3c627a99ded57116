/** The run's results as JSON-able records, the targets, and the markdown report. */
import { TARGET_PHASES, MB } from './plan.js';

export interface ProcFigures {
  cpuS: number;
  /** CPU ms per message (or per scan). */
  cpuMsPerUnit: number;
  rssStartMb: number;
  peakMb: number;
}

/** The whole machine over one phase (proc.ts MachineMeter). */
export interface MachineFigures {
  /** Cores' worth of CPU time used by every process on the machine (ours or not) per second. */
  busyCores: number;
  cores: number;
  /** Wall time the figure covers (the phase plus its late-work pause). */
  elapsedS: number;
}

export interface PhaseResult {
  id: string;
  kind: 'mailwarden' | 'direct' | 'clamd';
  size: number;
  concurrency: number;
  infectedRatio: number;
  /** Messages accepted (250) or scans done. */
  count: number;
  errors: number;
  errorDetail: Record<string, number>;
  errorSamples: string[];
  elapsedS: number;
  ratePerS: number;
  p50Ms: number;
  p95Ms?: number;
  p99Ms: number;
  procs: Record<string, ProcFigures>;
  machine?: MachineFigures;
  /** Gateway + scanner + reassembler CPU per message (Mailwarden's own processes). */
  mwCpuMsPerMsg?: number;
  /** S3 requests by kind and bytes, per message. */
  s3PerMsg?: Record<string, number>;
  scanner?: Record<string, number>;
  sink?: Record<string, number>;
  infectedSent?: number;
  infectedFound?: number;
  /** Interleaved repetitions this row is the median of, and the range of their rates. */
  rounds?: number;
  rateRange?: [number, number];
}

export const median = (xs: number[]): number => {
  const s = xs.filter((x) => Number.isFinite(x)).sort((a, b) => a - b);
  if (!s.length) return NaN;
  const m = Math.floor(s.length / 2);
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
};

/** One row per phase id: repeated phases become the median of their rounds. */
export function aggregate(results: PhaseResult[]): PhaseResult[] {
  const groups = new Map<string, PhaseResult[]>();
  for (const r of results) groups.set(r.id, [...(groups.get(r.id) ?? []), r]);
  return [...groups.values()].map((g) => {
    if (g.length === 1) return g[0]!;
    const first = g[0]!;
    const procs: Record<string, ProcFigures> = {};
    for (const name of Object.keys(first.procs)) {
      const of = (k: keyof ProcFigures) => median(g.map((r) => r.procs[name]?.[k] ?? NaN));
      procs[name] = { cpuS: of('cpuS'), cpuMsPerUnit: of('cpuMsPerUnit'), rssStartMb: of('rssStartMb'), peakMb: Math.max(...g.map((r) => r.procs[name]?.peakMb ?? NaN)) };
    }
    const errorDetail: Record<string, number> = {};
    for (const r of g) for (const [k, v] of Object.entries(r.errorDetail)) errorDetail[k] = (errorDetail[k] ?? 0) + v;
    const rates = g.map((r) => r.ratePerS);
    return {
      ...first,
      count: g.reduce((a, r) => a + r.count, 0),
      errors: g.reduce((a, r) => a + r.errors, 0),
      errorDetail,
      errorSamples: g.flatMap((r) => r.errorSamples).slice(0, 5),
      elapsedS: g.reduce((a, r) => a + r.elapsedS, 0),
      ratePerS: median(rates),
      p50Ms: median(g.map((r) => r.p50Ms)),
      ...(first.p95Ms !== undefined ? { p95Ms: median(g.map((r) => r.p95Ms ?? NaN)) } : {}),
      p99Ms: median(g.map((r) => r.p99Ms)),
      procs,
      ...(first.machine ? { machine: { ...first.machine, busyCores: median(g.map((r) => r.machine?.busyCores ?? NaN)), elapsedS: g.reduce((a, r) => a + (r.machine?.elapsedS ?? 0), 0) } } : {}),
      ...(first.mwCpuMsPerMsg !== undefined ? { mwCpuMsPerMsg: median(g.map((r) => r.mwCpuMsPerMsg ?? NaN)) } : {}),
      infectedSent: g.reduce((a, r) => a + (r.infectedSent ?? 0), 0),
      infectedFound: g.reduce((a, r) => a + (r.infectedFound ?? 0), 0),
      rounds: g.length,
      rateRange: [Math.min(...rates), Math.max(...rates)],
    };
  });
}

export interface MemoryResult {
  protocol: 'smtp' | 'pop3';
  attachmentBytes: number;
  messageBytes: number;
  ok: boolean;
  detail: string;
  seconds: number;
  /** Peak RSS growth per process over the transfer, MB. */
  growthMb: Record<string, number>;
  peakMb: Record<string, number>;
}

export interface MassMailingResult {
  messages: number;
  concurrency: number;
  attachmentBytes: number;
  ok: number;
  seconds: number;
  msgsPerS: number;
  /** Scans of the shared attachment (scanner "part.scanned" lines with its sha256). */
  attachmentScans: number;
  attachmentCacheHits: number;
  /** All scanner lines in the phase. */
  scanned: number;
  cacheHits: number;
  mwCpuMsPerMsg: number;
  clamdCpuMsPerMsg: number;
  s3RequestsPerMsg: number;
}

export interface Target {
  name: string;
  figure: string;
  threshold: string;
  status: 'met' | 'missed' | 'reported' | 'not measured';
}

export const MW_SERVICES = ['smtp-gateway', 'pop3-gateway', 'scanner', 'reassembler'];

export interface RunReport {
  startedAt: string;
  durationS: number;
  mode: string;
  machine: { cpus: number; model: string; node: string; commit: string };
  /** One row per phase (medians of the rounds). */
  phases: PhaseResult[];
  /** Every run of every phase, in order. */
  runs: PhaseResult[];
  massMailing?: MassMailingResult;
  memory: MemoryResult[];
  targets: Target[];
  notes: string[];
}

const f = (n: number | undefined, digits = 1): string => (n === undefined || !Number.isFinite(n) ? '–' : n.toFixed(digits));
const sizeLabel = (b: number): string => (b >= MB ? `${b / MB} MB` : `${Math.round(b / 1024)} KB`);

export function computeTargets(phases: PhaseResult[], memory: MemoryResult[], mass: MassMailingResult | undefined): Target[] {
  const byId = (id: string) => phases.find((p) => p.id === id);
  const ceiling = (re: RegExp) => {
    const c = phases.filter((p) => re.test(p.id));
    return c.length ? c.reduce((a, b) => (b.ratePerS > a.ratePerS ? b : a)) : undefined;
  };
  const out: Target[] = [];
  const check = (name: string, ok: boolean | undefined, figure: string, threshold: string) =>
    out.push({ name, figure, threshold, status: ok === undefined ? 'not measured' : ok ? 'met' : 'missed' });

  const eff = byId(TARGET_PHASES.efficiency);
  check('efficiency: Mailwarden CPU per 100 KB message', eff?.mwCpuMsPerMsg === undefined ? undefined : eff.mwCpuMsPerMsg <= 10, `${f(eff?.mwCpuMsPerMsg)} ms (${TARGET_PHASES.efficiency})`, '≤ 10 ms');

  const t100 = byId(TARGET_PHASES.throughput100k);
  const c100 = ceiling(TARGET_PHASES.ceiling100k);
  const r100 = t100 && c100 ? t100.ratePerS / c100.ratePerS : undefined;
  check('throughput: 100 KB at concurrency 32 vs raw clamd ceiling', r100 === undefined ? undefined : r100 >= 0.27, `${f(t100?.ratePerS)} msgs/s / ${f(c100?.ratePerS)} scans/s (${c100?.id ?? '–'}) = ${f(r100 === undefined ? undefined : r100 * 100, 0)}%`, '≥ 27%');

  const t1m = byId(TARGET_PHASES.throughput1m);
  const c1m = ceiling(TARGET_PHASES.ceiling1m);
  const r1m = t1m && c1m ? t1m.ratePerS / c1m.ratePerS : undefined;
  check('throughput: 1 MB at concurrency 8 vs raw clamd ceiling', r1m === undefined ? undefined : r1m >= 0.6, `${f(t1m?.ratePerS)} msgs/s / ${f(c1m?.ratePerS)} scans/s (${c1m?.id ?? '–'}) = ${f(r1m === undefined ? undefined : r1m * 100, 0)}%`, '≥ 60%');

  const lat = byId(TARGET_PHASES.latency);
  check('latency: p50 at concurrency 1, 100 KB', lat ? lat.p50Ms <= 40 : undefined, `${f(lat?.p50Ms)} ms (${TARGET_PHASES.latency})`, '≤ 40 ms');

  const mem = memory.filter((m) => m.ok);
  const worst = mem.flatMap((m) => Object.entries(m.growthMb).filter(([n]) => MW_SERVICES.includes(n)).map(([n, g]) => ({ n: `${m.protocol}/${n}`, g })));
  const top = worst.reduce<{ n: string; g: number } | undefined>((a, b) => (!a || b.g > a.g ? b : a), undefined);
  const memFailed = memory.some((m) => !m.ok);
  check(
    'memory: peak RSS growth per service, 50 MB attachment',
    memFailed ? false : top ? top.g <= 64 : undefined,
    top ? `worst ${top.n} +${f(top.g)} MB${memFailed ? '; a transfer failed' : ''}` : memFailed ? 'transfer failed' : '–',
    '≤ 64 MB',
  );

  const acc = byId(TARGET_PHASES.objectStore);
  if (acc?.s3PerMsg) {
    const s = acc.s3PerMsg;
    out.push({
      name: 'object-store round trips per message (100 KB)',
      figure: `${f(s.requests, 2)} requests (${f(s.put, 2)} PUT, ${f(s.get, 2)} GET, ${f((s.delete ?? 0) + (s.head ?? 0) + (s.multipart ?? 0) + (s.bucket ?? 0) + (s.other ?? 0), 2)} other), ${f((s.bytesUp ?? 0) / 1024, 0)} KB up, ${f((s.bytesDown ?? 0) / 1024, 0)} KB down`,
      threshold: 'reported (minimal)',
      status: 'reported',
    });
  }
  if (mass) {
    check('scan cache: mass mailing, one attachment to many recipients', mass.attachmentScans === 1, `${mass.attachmentScans} scan(s) of the attachment for ${mass.ok} messages, ${mass.attachmentCacheHits} cache hits`, '1 scan');
  }
  return out;
}

export function renderMarkdown(r: RunReport): string {
  const lines: string[] = [];
  lines.push(`# Mailwarden benchmark — ${r.startedAt} (${r.mode})`, '');
  lines.push(`${r.machine.cpus} × ${r.machine.model}, Node ${r.machine.node}, commit ${r.machine.commit}, ${Math.round(r.durationS)} s. Everything (load generator, sink, NATS, s3rver, clamd, Mailwarden) shares this machine.`, '');
  lines.push('## Throughput, latency, CPU and memory', '');
  lines.push('CPU is ms of CPU time per message (per scan for clamd rows), from /proc/<pid>/stat. "MW" = smtp-gateway + scanner + reassembler. Peak RSS is VmHWM over the phase (reset at its start). `s3-*` rows ran with the services behind the counting S3 proxy (its CPU and latency included); the other rows with S3 direct.', '');
  lines.push('| phase | size | conc | msgs/s | p50 ms | p99 ms | errors | MW CPU ms/msg (gw / scan / reasm) | nats | s3rver | clamd | all processes | peak RSS MB (gw / scan / reasm) | S3 req/msg (PUT / GET / other) |');
  lines.push('|---|---|---|---|---|---|---|---|---|---|---|---|---|---|');
  for (const p of r.phases) {
    const c = (n: string) => p.procs[n]?.cpuMsPerUnit;
    const m = (n: string) => p.procs[n]?.peakMb;
    const s = p.s3PerMsg;
    const other = s ? s.requests! - s.put! - s.get! : undefined;
    const mix = p.infectedRatio > 0 ? ', 10% EICAR' : '';
    lines.push(
      `| ${p.id} | ${sizeLabel(p.size)}${mix} | ${p.concurrency} | ${f(p.ratePerS)}${p.rateRange ? ` (${f(p.rateRange[0])}–${f(p.rateRange[1])})` : ''} | ${f(p.p50Ms)} | ${f(p.p99Ms)} | ${p.errors} | ` +
        (p.kind === 'mailwarden' ? `**${f(p.mwCpuMsPerMsg)}** (${f(c('smtp-gateway'))} / ${f(c('scanner'))} / ${f(c('reassembler'))})` : p.kind === 'direct' ? `sink ${f(c('smtp-sink'))}` : '–') +
        ` | ${f(c('nats'))} | ${f(c('s3rver'))} | ${f(c('clamd'))} | ${f(Object.values(p.procs).reduce((a, x) => a + (Number.isFinite(x.cpuMsPerUnit) ? x.cpuMsPerUnit : 0), 0))} | ` +
        (p.kind === 'mailwarden' ? `${f(m('smtp-gateway'), 0)} / ${f(m('scanner'), 0)} / ${f(m('reassembler'), 0)}` : '–') +
        ` | ${s ? `${f(s.requests, 2)} (${f(s.put, 2)} / ${f(s.get, 2)} / ${f(other, 2)})` : '–'} |`,
    );
  }
  lines.push('', '"all processes" adds every measured process (Mailwarden, NATS, s3rver, clamd, the S3 proxy when used, the sink and the load generator): with 2 cores, 2000 / that figure is the most msgs/s the box can do. Rows with a range are medians of interleaved rounds (min–max of msgs/s in brackets). clamd rows: raw INSTREAM scans of the same kind of parts, `x<n>` concurrent connections; "msgs/s" is scans/s. direct rows: the load generator straight to the SMTP sink.', '');

  lines.push('## Targets (ratios within this run)', '');
  lines.push('| target | this run | threshold | status |', '|---|---|---|---|');
  for (const t of r.targets) lines.push(`| ${t.name} | ${t.figure} | ${t.threshold} | **${t.status}** |`);
  lines.push('');

  if (r.memory.length) {
    lines.push('## Memory: one 50 MB attachment', '');
    lines.push('| protocol | message | time s | result | peak RSS growth MB per process |', '|---|---|---|---|---|');
    for (const m of r.memory) {
      const g = Object.entries(m.growthMb)
        .map(([n, v]) => `${n} +${f(v)}`)
        .join(', ');
      lines.push(`| ${m.protocol} | ${f(m.messageBytes / MB)} MB | ${f(m.seconds)} | ${m.ok ? 'ok' : 'FAILED'}: ${m.detail} | ${g} |`);
    }
    lines.push('');
  }

  if (r.massMailing) {
    const mm = r.massMailing;
    const twin = r.phases.find((p) => p.id === TARGET_PHASES.massMailingTwin);
    lines.push('## Scan cache: mass mailing', '');
    lines.push(
      `${mm.ok}/${mm.messages} messages, each with the same ${sizeLabel(mm.attachmentBytes)} attachment to its own recipient, ${f(mm.msgsPerS)} msgs/s: ` +
        `the attachment was scanned **${mm.attachmentScans}** time(s) and answered from the cache ${mm.attachmentCacheHits} times ` +
        `(all parts: ${mm.scanned} scanned, ${mm.cacheHits} cache hits — the text parts are personalised, so each is scanned). ` +
        `MW CPU ${f(mm.mwCpuMsPerMsg)} ms/msg, clamd ${f(mm.clamdCpuMsPerMsg)} ms/msg, ${f(mm.s3RequestsPerMsg, 2)} S3 requests/msg (measured behind the counting proxy).`,
      '',
    );
    if (twin) {
      lines.push('| same load, behind the same proxy | msgs/s | MW CPU ms/msg | clamd CPU ms/msg | S3 requests/msg |', '|---|---|---|---|---|');
      lines.push(`| one attachment for all (mass mailing, c${r.massMailing.concurrency}) | ${f(mm.msgsPerS)} | ${f(mm.mwCpuMsPerMsg)} | ${f(mm.clamdCpuMsPerMsg)} | ${f(mm.s3RequestsPerMsg, 2)} |`);
      lines.push(`| unique attachments (${twin.id}) | ${f(twin.ratePerS)} | ${f(twin.mwCpuMsPerMsg)} | ${f(twin.procs.clamd?.cpuMsPerUnit)} | ${f(twin.s3PerMsg?.requests, 2)} |`, '');
    }
  }

  const s3rows = r.phases.filter((p) => p.s3PerMsg);
  if (s3rows.length) {
    lines.push('## Object store per message', '');
    lines.push('| phase | requests | PUT | multipart PUT parts | GET | HEAD | DELETE | multipart ctl | bucket | KB up | KB down |', '|---|---|---|---|---|---|---|---|---|---|---|');
    for (const p of s3rows) {
      const s = p.s3PerMsg!;
      lines.push(`| ${p.id} | ${f(s.requests, 2)} | ${f(s.put, 2)} | ${f(s.putPart, 2)} | ${f(s.get, 2)} | ${f(s.head, 2)} | ${f(s.delete, 2)} | ${f(s.multipart, 2)} | ${f(s.bucket, 2)} | ${f((s.bytesUp ?? 0) / 1024, 0)} | ${f((s.bytesDown ?? 0) / 1024, 0)} |`);
    }
    lines.push('');
  }
  if (r.notes.length) {
    lines.push('## Notes', '', ...r.notes.map((n) => `- ${n}`), '');
  }
  return lines.join('\n');
}
