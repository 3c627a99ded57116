/** The drill's report: a markdown section for drill/RESULTS.md and the JSON behind it. */
import type { FaultRecord } from './faults.js';
import type { DrillMessage } from './sender.js';
import type { Delivery, Tally, Verdict } from './tally.js';

export interface DrillParams {
  /** The gateway's SMTP_DELIVERY: `proxy` (250 = upstream's reply) or `queue` (250 = durable in the queue). */
  delivery: 'proxy' | 'queue';
  messages: number;
  concurrency: number;
  seed: number;
  quick: boolean;
  faultIntervalMs: number;
  clamdStallMs: number;
  scanners: number;
  reassemblers: number;
  gateways: number;
  infectedRatio: number;
  attachmentBytes: number;
  retry: { maxAttempts: number; maxAgeMs: number; delaysMs: number[] };
}

export interface DrillReport {
  date: string;
  commit: string;
  params: DrillParams;
  /** Seconds: the whole load (first attempt to last final answer), and the part with faults on. */
  durationS: number;
  faultWindowS: number;
  /** Queue mode: seconds from the end of the load until the queue was empty, and the references a 250 quoted that never finished. */
  queueDrain?: { waitedS: number; unfinished: string[] };
  faults: FaultRecord[];
  tally: Omit<Tally, 'perMessage' | 'violations'>;
  targets: { name: string; met: boolean; value: string }[];
  /** Gateway log events (from logs/smtp-gateway.log) by name. */
  gatewayEvents: Record<string, number>;
  violations: {
    id: string;
    verdict: Verdict;
    infected: boolean;
    infectedDelivered: boolean;
    altered: boolean;
    attempts: DrillMessage['attempts'];
    deliveries: Pick<Delivery, 'file' | 'mtimeMs' | 'size' | 'eicar' | 'notice'>[];
    attribution: { attempt: number; outcome: string; stage: string }[];
  }[];
  /** Inherent cases (lost final reply), listed like violations but not counted against the targets. */
  inherent: DrillReport['violations'];
  /** Delivered once after a 250 whose copy was attributed to an earlier attempt (timing check). */
  odd: string[];
  stateDir?: string;
}

const ROWS: [Verdict | 'infected', string][] = [
  ['delivered-once', 'delivered once after `250`'],
  ['lost', '`250` but never delivered (lost)'],
  ['duplicated', 'delivered twice or more (duplicated)'],
  ['duplicate-after-lost-reply', 'duplicate after a lost final reply (inherent SMTP limit)'],
  ['duplicate-after-interrupted-delivery', 'queue: delivered again after a deliverer was cut off between DATA and recording upstream\'s reply (inherent SMTP limit)'],
  ['delivered-after-lost-reply', 'final reply lost, delivered once, sender still holds it (inherent)'],
  ['tempfail-delivered', '`4xx` (or connection lost before the end of DATA) but that copy delivered anyway'],
  ['refused', '`5xx` (given up, not delivered)'],
  ['refused-but-delivered', '`5xx` but delivered'],
  ['pending', 'pending: `4xx`/connection failure on the last attempt, not delivered (sender holds it)'],
];

export function computeTargets(t: Tally): DrillReport['targets'] {
  const c = t.counts;
  return [
    { name: '0 lost', met: c.lost === 0, value: String(c.lost) },
    { name: '0 duplicated (beyond the inherent lost-reply cases)', met: c.duplicated === 0, value: String(c.duplicated) },
    { name: '0 infected delivered', met: t.infectedDelivered === 0, value: String(t.infectedDelivered) },
    { name: '0 copies delivered after a `4xx`/`5xx`', met: c['tempfail-delivered'] + c['refused-but-delivered'] === 0, value: String(c['tempfail-delivered'] + c['refused-but-delivered']) },
    {
      name: 'every `4xx`/lost connection ends delivered once or pending',
      met: t.tempfailed.other === 0,
      value: `${t.tempfailed.total} retried: ${t.tempfailed.deliveredOnce} delivered once, ${t.tempfailed.pending} pending, ${t.tempfailed.inherent} lost final reply, ${t.tempfailed.other} other`,
    },
    { name: 'clean messages delivered byte-for-byte', met: t.cleanAltered === 0, value: `${t.cleanAltered} altered` },
  ];
}

const fmtTime = (ms: number): string => new Date(ms).toISOString().slice(11, 23);

function renderCase(v: DrillReport['violations'][number]): string {
  const lines = [`- **${v.id}** — ${v.verdict}${v.infected ? ', infected' : ''}${v.infectedDelivered ? ', **EICAR delivered**' : ''}${v.altered ? ', **altered**' : ''}`];
  for (const a of v.attempts) {
    lines.push(`  - attempt ${a.n} ${fmtTime(a.startMs)}–${fmtTime(a.endMs)}: ${a.outcome === 'conn' ? `connection lost at ${a.stage}` : `at ${a.stage}`}: \`${a.reply.slice(0, 160)}\``);
  }
  v.deliveries.forEach((d, k) => {
    const at = v.attribution[k];
    lines.push(`  - delivery ${k + 1} written ${fmtTime(d.mtimeMs)} (${d.size} B${d.eicar ? ', EICAR inside' : ''}${d.notice ? ', notice' : ''}) → attempt ${at?.attempt ?? '?'} (${at?.outcome ?? '?'} at ${at?.stage ?? '?'})`);
  });
  if (!v.deliveries.length) lines.push('  - no delivery');
  return lines.join('\n');
}

export function renderMarkdown(r: DrillReport): string {
  const p = r.params;
  const t = r.tally;
  const out: string[] = [];
  const mode = p.delivery === 'queue' ? ', queue mode' : '';
  out.push(`## ${r.date} — ${p.quick ? 'quick' : 'full'} drill${mode}, ${p.messages} messages (commit ${r.commit})`, '');
  out.push(
    `Parameters: SMTP_DELIVERY=${p.delivery ?? 'proxy'}, ${p.messages} messages, concurrency ${p.concurrency}, seed ${p.seed}, ${Math.round(p.infectedRatio * 100)} % with EICAR, ` +
      `${p.attachmentBytes} B attachment; scanner ×${p.scanners}, reassembler ×${p.reassemblers}, smtp-gateway ×${p.gateways}; ` +
      `a fault every ~${p.faultIntervalMs / 1000} s (×0.5…1.5), clamd stalls ${p.clamdStallMs / 1000} s; client retries on 4xx/connection failure ` +
      `up to ${p.retry.maxAttempts} attempts or ${p.retry.maxAgeMs / 60000} min (delays ${p.retry.delaysMs.map((d) => d / 1000).join(', ')} s ±25 %).`,
    '',
    `Duration: ${r.durationS.toFixed(0)} s of load (${(p.messages / r.durationS).toFixed(1)} msgs/s), faults during the first ${r.faultWindowS.toFixed(0)} s ` +
      `(${p.delivery === 'queue' ? 'until the queue was empty' : 'until every message had its first attempt'}); ${t.attempts} attempts in all.` +
      (r.queueDrain ? ` The queue was empty ${r.queueDrain.waitedS.toFixed(0)} s after the load (${r.queueDrain.unfinished.length} accepted message(s) unfinished).` : ''),
    '',
  );
  const byKind: Record<string, number> = {};
  for (const f of r.faults) byKind[f.kind] = (byKind[f.kind] ?? 0) + 1;
  out.push(`Faults applied (${r.faults.length}): ${Object.entries(byKind).map(([k, n]) => `${k} ×${n}`).join(', ') || 'none'}.`, '');
  out.push('<details><summary>Fault schedule</summary>', '', '| at (s) | fault | target | took (ms) | detail |', '|---:|---|---|---:|---|');
  for (const f of r.faults) out.push(`| ${f.atS.toFixed(1)} | ${f.kind} | ${f.target} | ${f.durationMs} | ${f.ok ? '' : '**FAILED** '}${f.detail} |`);
  out.push('', '</details>', '');
  out.push('| outcome (per drill id) | messages |', '|---|---:|');
  for (const [v, label] of ROWS) out.push(`| ${label} | ${t.counts[v as Verdict]} |`);
  out.push(`| infected sent / delivered with the notice and no EICAR / **with EICAR inside** | ${t.infectedSent} / ${t.infectedWithNotice} / ${t.infectedDelivered} |`);
  out.push(`| clean messages delivered altered | ${t.cleanAltered} |`);
  out.push(`| deliveries without a known X-Drill-Id | ${t.strayDeliveries} |`, '');
  out.push(
    `Attempt outcomes: ${Object.entries(t.attemptOutcomes)
      .sort((a, b) => b[1] - a[1])
      .map(([k, n]) => `${k} ×${n}`)
      .join(', ')}. Gateway log: ${Object.entries(r.gatewayEvents)
      .map(([k, n]) => `${k} ×${n}`)
      .join(', ')}.`,
    '',
  );
  out.push('| target | result | value |', '|---|---|---|');
  for (const g of r.targets) out.push(`| ${g.name} | ${g.met ? 'met' : '**MISSED**'} | ${g.value} |`);
  out.push('');
  if (r.violations.length) {
    out.push(`### Violations (${r.violations.length})`, '');
    for (const v of r.violations.slice(0, 50)) out.push(renderCase(v));
    if (r.violations.length > 50) out.push(`- … ${r.violations.length - 50} more in the JSON`);
    out.push('');
  } else out.push('No violations.', '');
  if (r.inherent.length) {
    out.push(`### Inherent cases: a final reply lost after the message reached upstream or the queue (${r.inherent.length})`, '');
    for (const v of r.inherent.slice(0, 20)) out.push(renderCase(v));
    if (r.inherent.length > 20) out.push(`- … ${r.inherent.length - 20} more in the JSON`);
    out.push('');
  }
  if (r.odd.length) out.push(`Delivered once after a 250 but the copy was attributed to an earlier attempt (timing): ${r.odd.join(', ')}.`, '');
  return out.join('\n');
}
