/** The markdown report appended to fuzz/RESULTS.md, and the console summary. */
import { CATEGORIES, OUTCOMES, type Category, type InputResult, type Outcome } from './types.js';
import type { ProcMemory, SupervisorEvent } from './watch.js';

export interface RunSummary {
  date: string;
  commit: string;
  seed: number;
  mode: string;
  planned: number;
  results: InputResult[];
  durationS: number;
  stoppedEarly: boolean;
  seeds: Record<string, number>;
  probes: { smtp: number; smtpFailed: number; pop3: number; pop3Failed: number; worstSmtpMs: number; worstPop3Ms: number };
  memory: ProcMemory[];
  restarts: SupervisorEvent[];
  errorLogs: Record<string, { count: number; samples: string[] }>;
  memoryBoundMb: number;
  savedTo: Record<number, string>;
  logLines: Record<number, string[]>;
  settings: string;
}

export function table(results: InputResult[]): Record<Category, Record<Outcome, number>> {
  const t = Object.fromEntries(CATEGORIES.map((c) => [c, Object.fromEntries(OUTCOMES.map((o) => [o, 0]))])) as Record<Category, Record<Outcome, number>>;
  for (const r of results) t[r.category][r.outcome]++;
  return t;
}

export function targets(s: RunSummary): { name: string; met: boolean; detail: string }[] {
  const f = s.results.flatMap((r) => r.findings.map((x) => ({ ...x, index: r.index })));
  const count = (k: string) => f.filter((x) => x.kind === k).length;
  const worstGrowth = s.memory.filter((m) => !['nats', 's3rver', 'clamd', 'dovecot'].includes(m.name)).reduce((w, m) => Math.max(w, m.peakMb - m.startMb), 0);
  return [
    { name: 'no service process died or restarted', met: s.restarts.length === 0 && count('crash') === 0, detail: `${s.restarts.length} supervisor events, ${count('crash')} dead dependencies` },
    {
      name: 'gateway answers EHLO within 5 s (between inputs, at the end), POP3 greeting + CAPA within 5 s',
      met: s.probes.smtpFailed === 0 && s.probes.pop3Failed === 0 && count('probe') === 0,
      detail: `SMTP ${s.probes.smtp - s.probes.smtpFailed}/${s.probes.smtp} (worst ${s.probes.worstSmtpMs} ms), POP3 ${s.probes.pop3 - s.probes.pop3Failed}/${s.probes.pop3} (worst ${s.probes.worstPop3Ms} ms)`,
    },
    { name: 'no 4xx (POP3: -ERR [SYS/TEMP]) for a well-framed message', met: count('tempfail') === 0, detail: `${count('tempfail')} tempfails` },
    { name: 'every input answered within its deadline (no hang)', met: count('hang') === 0, detail: `${count('hang')} hangs, ${count('closed')} closed without a reply` },
    { name: 'no partial or lost message delivered', met: count('partial-delivery') + count('lost-message') === 0, detail: `${count('partial-delivery')} partial, ${count('lost-message')} lost` },
    {
      name: 'no recoverable EICAR in a delivered mutated message (recovery oracle)',
      met: count('recoverable-payload') === 0,
      detail: `oracle ran on ${s.results.filter((r) => r.oracle === 'clean' || r.oracle === 'recovered').length} deliveries, skipped ${s.results.filter((r) => r.oracle === 'skipped').length}, ${count('recoverable-payload')} recoverable`,
    },
    { name: `memory: peak RSS growth ≤ ${s.memoryBoundMb} MB per service`, met: worstGrowth <= s.memoryBoundMb, detail: `worst growth ${worstGrowth.toFixed(0)} MB` },
  ];
}

export function renderMarkdown(s: RunSummary): string {
  const t = table(s.results);
  const lines: string[] = [];
  lines.push(`## ${s.date} — seed ${s.seed}, ${s.results.length} inputs (${s.mode}), ${s.durationS.toFixed(0)} s`, '');
  lines.push(`Commit ${s.commit}. Reproduce: \`npm run fuzz -- --seed ${s.seed} --count ${s.planned}\`; one input: \`npm run fuzz -- --seed ${s.seed} --only <index>\`.`);
  lines.push(`Seeds: ${Object.entries(s.seeds).map(([k, v]) => `${v} ${k}`).join(', ')}. ${s.settings}${s.stoppedEarly ? ' **Stopped early by --max-seconds.**' : ''}`, '');
  lines.push('| category | inputs | 250 / +OK | 5xx / -ERR | 4xx / -ERR [SYS/TEMP] | connection closed | timeout |', '|---|---:|---:|---:|---:|---:|---:|');
  for (const c of CATEGORIES) {
    const row = t[c];
    const n = OUTCOMES.reduce((a, o) => a + row[o], 0);
    lines.push(`| ${c} | ${n} | ${OUTCOMES.map((o) => row[o]).join(' | ')} |`);
  }
  lines.push('');
  const kinds = new Map<string, number>();
  for (const r of s.results) {
    const k = r.category.endsWith('protocol') ? `${r.category.split('-')[0]} ${r.kind}` : `${r.category.split('-')[0]} ${r.kind.split(' ')[0]}`;
    kinds.set(k, (kinds.get(k) ?? 0) + 1);
  }
  lines.push(`Inputs by attack / first mutator: ${[...kinds].sort().map(([k, v]) => `${k} ${v}`).join(', ')}.`, '');
  const attacks = new Map<string, Record<string, number>>();
  for (const r of s.results.filter((x) => x.category.endsWith('protocol'))) {
    const k = `${r.category.split('-')[0]} ${r.kind}`;
    const o = attacks.get(k) ?? {};
    o[r.outcome] = (o[r.outcome] ?? 0) + 1;
    attacks.set(k, o);
  }
  lines.push(`Protocol attacks by last answer: ${[...attacks].sort().map(([k, o]) => `${k} (${Object.entries(o).map(([a, n]) => `${a}:${n}`).join(' ')})`).join(', ')}.`, '');
  const slow = [...s.results].sort((a, b) => b.ms - a.ms).slice(0, 5);
  lines.push(`Slowest inputs: ${slow.map((r) => `${r.index} (${r.category} ${r.kind.split(' on ')[0]}, ${r.outcome}) ${(r.ms / 1000).toFixed(1)} s`).join('; ')}. Median ${(([...s.results].sort((a, b) => a.ms - b.ms)[Math.floor(s.results.length / 2)]?.ms ?? 0) / 1000).toFixed(2)} s.`, '');
  lines.push('| target | met | detail |', '|---|---|---|');
  for (const x of targets(s)) lines.push(`| ${x.name} | ${x.met ? 'yes' : '**no**'} | ${x.detail} |`);
  lines.push('');
  lines.push('| process | RSS at start (MB) | peak (MB) | growth (MB) | at end (MB) |', '|---|---:|---:|---:|---:|');
  for (const m of s.memory) lines.push(`| ${m.name}${m.pids.length > 1 ? ` (${m.pids.length} pids)` : ''} | ${m.startMb.toFixed(0)} | ${m.peakMb.toFixed(0)} | ${(m.peakMb - m.startMb).toFixed(0)} | ${m.endMb.toFixed(0)} |`);
  lines.push('');
  const findings = s.results.filter((r) => r.findings.length);
  lines.push(`### Findings (${findings.reduce((n, r) => n + r.findings.length, 0)})`, '');
  if (!findings.length && !s.restarts.length) lines.push('None.');
  for (const e of s.restarts) lines.push(`- supervisor, during input ${e.index}: ${e.line}`);
  for (const r of findings) {
    for (const f of r.findings) lines.push(`- **${f.kind}** — input ${r.index} (${r.category}: ${r.kind}): ${f.text}${f.ref ? ` (ref ${f.ref})` : ''}`);
    lines.push(`  reproduce: \`npm run fuzz -- --seed ${s.seed} --only ${r.index}\`${s.savedTo[r.index] ? `; input saved as \`${s.savedTo[r.index]}\`` : ''}`);
    for (const l of (s.logLines[r.index] ?? []).slice(0, 6)) lines.push(`  - log: \`${l.slice(0, 300).replace(/`/g, "'")}\``);
  }
  lines.push('');
  const errs = Object.entries(s.errorLogs).filter(([, v]) => v.count);
  lines.push(`Service log lines at level error or above: ${errs.length ? errs.map(([k, v]) => `${k} ${v.count}`).join(', ') : 'none'}.`);
  for (const [k, v] of errs) for (const l of v.samples) lines.push(`  - ${k}: \`${l.slice(0, 300).replace(/`/g, "'")}\``);
  lines.push('');
  return lines.join('\n');
}
