#!/usr/bin/env node
/**
 * npm run fuzz [-- --quick] [--count N] [--seed S] [--max-seconds T] [--only i,j] [--keep-state] [--no-report]
 *
 * Hostile inputs against the real stack (NATS, clamd, s3rver, the dev mailbox as SMTP upstream,
 * Dovecot as POP3 upstream, and the Mailwarden services under the local stack's supervisor):
 * mutated messages through SMTP and POP3, and SMTP/POP3 protocol attacks. Between inputs the
 * gateways are probed (EHLO, POP3 greeting + CAPA within 5 s); the services' pids, restarts and RSS
 * are watched; a delivered mutated message that carried EICAR goes to the recovery oracle.
 * Appends a report to fuzz/RESULTS.md and saves offending inputs under fuzz/findings/.
 * Input i of seed s is always the same bytes: `--seed s --only i` reproduces it on a fresh stack.
 */
import { execSync } from 'node:child_process';
import { appendFileSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { parseArgs } from 'node:util';
import { fileURLToPath } from 'node:url';
import { MaildirStore } from '@mailwarden/dev-mailbox';
import { startStack } from '@mailwarden/local-stack';
import { SmtpConnection } from '../../bench/dist/smtp-load.js';
import { mutateMessage } from './mutate.js';
import { POP3_ATTACKS, POP3_ATTACK_WEIGHTS, retrieveMessage } from './pop3.js';
import { RawConn } from './raw.js';
import { renderMarkdown, table, targets, type RunSummary } from './report.js';
import { Rng, inputSeed } from './rng.js';
import { loadSeeds, type SeedMessage } from './seeds.js';
import { SMTP_ATTACKS, SMTP_ATTACK_WEIGHTS, sendMessage } from './smtp.js';
import { CATEGORIES, OUTCOMES, type Category, type Finding, type FuzzContext, type InputResult, type Target } from './types.js';
import { StackWatch } from './watch.js';

const FUZZ_DIR = fileURLToPath(new URL('../', import.meta.url));
const REPO_ROOT = fileURLToPath(new URL('../../', import.meta.url));

const { values: args } = parseArgs({
  options: {
    quick: { type: 'boolean', default: false },
    count: { type: 'string' },
    seed: { type: 'string' },
    'max-seconds': { type: 'string' },
    only: { type: 'string' },
    'keep-state': { type: 'boolean', default: false },
    'no-report': { type: 'boolean', default: false },
    'memory-bound-mb': { type: 'string', default: '256' },
  },
});

const log = (msg: string): void => console.error(`[fuzz ${new Date().toISOString().slice(11, 19)}] ${msg}`);

const PROBE_MS = 5000;
/** Per-input deadlines: a message (scan included), a protocol attack. */
const MESSAGE_DEADLINE_MS = 100_000;
const ATTACK_DEADLINE_MS = 90_000;
/** The gateways' scan deadline: shorter than the message deadline, so a slow scan shows as a 451 (a finding), not as our timeout. */
const SCAN_TIMEOUT_MS = 60_000;

interface PlannedInput {
  index: number;
  category: Category;
  kind: string;
  rng: Rng;
  message?: { bytes: Buffer; seed: SeedMessage; mutators: string[] };
}

function plan(seed: number, index: number, seeds: SeedMessage[]): PlannedInput {
  const rng = new Rng(inputSeed(seed, index));
  const category = rng.weighted<Category>([
    ['smtp-message', 45],
    ['smtp-protocol', 22],
    ['pop3-message', 18],
    ['pop3-protocol', 15],
  ]);
  if (category === 'smtp-protocol') return { index, category, kind: rng.weighted(SMTP_ATTACK_WEIGHTS), rng };
  if (category === 'pop3-protocol') return { index, category, kind: rng.weighted(POP3_ATTACK_WEIGHTS), rng };
  // Half the messages from the evasion corpus and the built-ins (they carry EICAR), half from the real corpus.
  const hostile = seeds.filter((s) => !s.id.startsWith('corpus:'));
  const real = seeds.filter((s) => s.id.startsWith('corpus:'));
  const base = real.length && rng.chance(0.5) ? rng.pick(real) : rng.pick(hostile);
  const m = mutateMessage(rng, base.bytes, () => rng.pick(seeds).bytes);
  return { index, category, kind: `${m.mutators.join('+')} on ${base.id}`, rng, message: { bytes: m.bytes, seed: base, mutators: m.mutators } };
}

async function withDeadline<T>(p: Promise<T>, ms: number): Promise<T | 'deadline'> {
  let timer: NodeJS.Timeout | undefined;
  try {
    return await Promise.race([p, new Promise<'deadline'>((r) => (timer = setTimeout(() => r('deadline'), ms)))]);
  } finally {
    clearTimeout(timer);
  }
}

async function probeSmtp(t: Target): Promise<{ ms: number; error?: string }> {
  const t0 = Date.now();
  const r = await withDeadline(
    SmtpConnection.open(t.host, t.port, PROBE_MS).then(
      async (c) => {
        await c.quit();
        return undefined;
      },
      (e: Error) => e.message,
    ),
    PROBE_MS,
  );
  const ms = Date.now() - t0;
  return { ms, error: r === 'deadline' ? `no EHLO answer within ${PROBE_MS} ms` : r ? `EHLO probe: ${r}` : undefined };
}

async function probePop3(t: Target): Promise<{ ms: number; error?: string }> {
  const t0 = Date.now();
  const run = async (): Promise<string | undefined> => {
    const c = await RawConn.open(t.host, t.port, PROBE_MS);
    try {
      const g = await c.line(PROBE_MS);
      if (!g?.startsWith('+OK')) return `POP3 greeting: ${g ?? 'none'}`;
      await c.write('CAPA\r\n');
      const st = await c.line(PROBE_MS);
      if (!st?.startsWith('+OK')) return `POP3 CAPA: ${st ?? 'no answer'}`;
      if ((await c.pop3Multiline(PROBE_MS)) === undefined) return 'POP3 CAPA: list not finished';
      await c.write('QUIT\r\n');
      return undefined;
    } finally {
      c.destroy();
    }
  };
  const r = await withDeadline(run().catch((e: Error) => `POP3 probe: ${e.message}`), PROBE_MS);
  return { ms: Date.now() - t0, error: r === 'deadline' ? `no POP3 greeting + CAPA within ${PROBE_MS} ms` : r };
}

async function runInput(ctx: FuzzContext, p: PlannedInput): Promise<InputResult> {
  const t0 = Date.now();
  const user = `${p.category.startsWith('pop3') ? 'p' : 'f'}${p.index}`;
  const deadline = p.message ? MESSAGE_DEADLINE_MS : ATTACK_DEADLINE_MS;
  let work: Promise<Omit<InputResult, 'index' | 'category' | 'ms'>>;
  if (p.category === 'smtp-message') work = sendMessage(ctx, user, p.message!.bytes, p.message!.seed.eicar, deadline - 5000);
  else if (p.category === 'pop3-message') work = retrieveMessage(ctx, p.rng, user, p.message!.bytes, p.message!.seed.eicar);
  else if (p.category === 'smtp-protocol') work = SMTP_ATTACKS[p.kind]!(ctx, p.rng, user);
  else work = POP3_ATTACKS[p.kind]!(ctx, p.rng, user);
  const r = await withDeadline(
    work.catch((e: Error): Omit<InputResult, 'index' | 'category' | 'ms'> => ({ kind: '', outcome: 'closed', replies: [`client error: ${e.message}`], findings: [] })),
    deadline,
  );
  const base = { index: p.index, category: p.category, ms: Date.now() - t0 };
  if (r === 'deadline') {
    return { ...base, kind: p.kind, outcome: 'timeout', replies: [], findings: [{ kind: 'hang', text: `no result within the input deadline (${deadline / 1000} s)` }], input: p.message?.bytes };
  }
  return { ...base, ...r, kind: p.kind, input: r.input ?? p.message?.bytes };
}

function gitCommit(): string {
  try {
    const sha = execSync('git rev-parse --short HEAD', { cwd: REPO_ROOT, stdio: ['ignore', 'pipe', 'ignore'] }).toString().trim();
    const dirty = execSync('git status --porcelain -- . ":!fuzz/RESULTS.md"', { cwd: REPO_ROOT, stdio: ['ignore', 'pipe', 'ignore'] }).toString().trim() ? '+dirty' : '';
    return sha + dirty;
  } catch {
    return 'unknown';
  }
}

/** Lines at level error (50) or fatal (60), and crash traces, in a service's log. */
function errorLines(file: string): string[] {
  if (!existsSync(file)) return [];
  return readFileSync(file, 'utf8')
    .split('\n')
    .filter((l) => /"level":(50|60)/.test(l) || /^(Uncaught|.*Error: .*\n?\s*at )|FATAL|heap out of memory/.test(l));
}

async function main(): Promise<void> {
  const quick = args.quick;
  const count = Number(args.count ?? (quick ? 150 : 1000));
  const seed = Number(args.seed ?? Math.floor(Date.now() / 1000) % 1_000_000);
  const maxSeconds = Number(args['max-seconds'] ?? (quick ? 300 : 1200));
  const memoryBoundMb = Number(args['memory-bound-mb']);
  const only = args.only?.split(',').map(Number);
  const indices = only ?? Array.from({ length: count }, (_, i) => i);
  const { seeds, counts, corpus } = loadSeeds();
  log(`seed ${seed}, ${indices.length} inputs, at most ${maxSeconds} s; seeds: ${JSON.stringify(counts)}${corpus ? '' : ' (no shared corpus)'}`);

  const stateDir = mkdtempSync(join(tmpdir(), 'mw-fuzz-'));
  const stack = await startStack({ stateDir });
  const env: Record<string, string> = { ...stack.env, OPS_LISTEN: 'off', SCAN_TIMEOUT_MS: String(SCAN_TIMEOUT_MS) };
  const watch = new StackWatch(stack);
  const results: InputResult[] = [];
  const probes = { smtp: 0, smtpFailed: 0, pop3: 0, pop3Failed: 0, worstSmtpMs: 0, worstPop3Ms: 0 };
  const hp = (s: string): Target => ({ host: s.slice(0, s.lastIndexOf(':')), port: Number(s.slice(s.lastIndexOf(':') + 1)) });
  const smtp = hp(env.SMTP_LISTEN!);
  const pop3 = hp(env.POP3_LISTEN!);
  const started = Date.now();
  let stoppedEarly = false;
  try {
    await watch.start(env);
    log(`stack up in ${stateDir}: SMTP ${env.SMTP_LISTEN}, POP3 ${env.POP3_LISTEN}`);
    const ctx: FuzzContext = {
      smtp,
      pop3,
      mailRoot: env.DEV_MAILBOX_DIR!,
      maildir: new MaildirStore(env.DEV_MAILBOX_DIR!),
      probeSmtp: async () => (await probeSmtp(smtp)).error,
      probePop3: async () => (await probePop3(pop3)).error,
    };
    const probeAll = async (withPop3: boolean): Promise<Finding[]> => {
      const out: Finding[] = [];
      const s = await probeSmtp(smtp);
      probes.smtp++;
      probes.worstSmtpMs = Math.max(probes.worstSmtpMs, s.ms);
      if (s.error) {
        probes.smtpFailed++;
        out.push({ kind: 'probe', text: `after the input: ${s.error}` });
      }
      if (withPop3) {
        const p = await probePop3(pop3);
        probes.pop3++;
        probes.worstPop3Ms = Math.max(probes.worstPop3Ms, p.ms);
        if (p.error) {
          probes.pop3Failed++;
          out.push({ kind: 'probe', text: `after the input: ${p.error}` });
        }
      }
      return out;
    };
    for (const [n, index] of indices.entries()) {
      if ((Date.now() - started) / 1000 > maxSeconds) {
        stoppedEarly = true;
        log(`--max-seconds ${maxSeconds} reached after ${n} inputs`);
        break;
      }
      watch.currentIndex = index;
      const p = plan(seed, index, seeds);
      const restartsBefore = watch.restarts().length;
      const r = await runInput(ctx, p);
      r.findings.push(...(await probeAll(p.category.startsWith('pop3') || n % 10 === 0)));
      for (const problem of watch.check()) r.findings.push({ kind: 'crash', text: problem });
      for (const e of watch.restarts().slice(restartsBefore)) r.findings.push({ kind: 'restart', text: `supervisor: ${e.line}` });
      results.push(r);
      if (r.findings.length) log(`input ${index} (${r.category} ${r.kind.slice(0, 80)}): ${r.outcome}; ${r.findings.map((f) => `${f.kind}: ${f.text}`).join('; ').slice(0, 400)}`);
      if ((n + 1) % 25 === 0) log(`${n + 1}/${indices.length} inputs, ${((Date.now() - started) / 1000).toFixed(0)} s`);
      // A service being restarted: wait for it, so the next inputs test the product, not the gap.
      for (let i = 0; i < 60 && watch.supervised.some((s) => !s.current()); i++) await new Promise((res) => setTimeout(res, 1000));
    }
    // Final probes, after a moment for the last input's work to settle.
    await new Promise((res) => setTimeout(res, 2000));
    const last = await probeAll(true);
    if (last.length && results.length) results[results.length - 1]!.findings.push(...last.map((f) => ({ ...f, text: `final probe: ${f.text}` })));
  } finally {
    await watch.stop();
  }
  const durationS = (Date.now() - started) / 1000;

  // Findings: save inputs, collect the log lines that name their refs.
  const findingsDir = join(FUZZ_DIR, 'findings');
  const savedTo: Record<number, string> = {};
  const logLines: Record<number, string[]> = {};
  const logs = ['smtp-gateway', 'pop3-gateway', 'scanner', 'reassembler'].map((n) => ({ n, text: existsSync(join(stateDir, 'logs', `${n}.log`)) ? readFileSync(join(stateDir, 'logs', `${n}.log`), 'utf8').split('\n') : [] }));
  for (const r of results.filter((x) => x.findings.length)) {
    if (r.input) {
      mkdirSync(findingsDir, { recursive: true });
      const file = join(findingsDir, `seed${seed}-input${r.index}-${r.category}${r.category.endsWith('message') ? '.eml' : '.bin'}`);
      writeFileSync(file, r.input);
      savedTo[r.index] = relative(REPO_ROOT, file);
    }
    const refs = r.findings.map((f) => f.ref).filter((x): x is string => !!x);
    logLines[r.index] = logs.flatMap(({ n, text }) => text.filter((l) => refs.some((ref) => l.includes(ref))).map((l) => `${n}: ${l}`));
  }
  const errorLogs: RunSummary['errorLogs'] = {};
  for (const n of ['smtp-gateway', 'pop3-gateway', 'scanner', 'reassembler']) {
    const lines = errorLines(join(stateDir, 'logs', `${n}.log`));
    errorLogs[n] = { count: lines.length, samples: [...new Set(lines.map((l) => l.replace(/"(time|pid|ref|session)":("[^"]*"|\d+),?/g, '')))].slice(0, 3) };
  }

  const summary: RunSummary = {
    date: new Date().toISOString().slice(0, 16).replace('T', ' ') + ' UTC',
    commit: gitCommit(),
    seed,
    mode: only ? `only ${only.join(',')}` : quick ? 'quick' : 'full',
    planned: count,
    results,
    durationS,
    stoppedEarly,
    seeds: counts,
    probes,
    memory: [...watch.memory.values()],
    restarts: watch.restarts(),
    errorLogs,
    memoryBoundMb,
    savedTo,
    logLines,
    settings: `Per-input deadline ${MESSAGE_DEADLINE_MS / 1000} s (messages) / ${ATTACK_DEADLINE_MS / 1000} s (attacks); SCAN_TIMEOUT_MS=${SCAN_TIMEOUT_MS}; probes: EHLO after every input, POP3 greeting + CAPA after every POP3 input and every 10th input, both at the end (${PROBE_MS / 1000} s each).`,
  };
  const md = renderMarkdown(summary);
  if (!args['no-report']) {
    const file = join(FUZZ_DIR, 'RESULTS.md');
    if (!existsSync(file)) writeFileSync(file, '# Fuzzing results (`npm run fuzz`)\n\nEach run appends a section. Offending inputs are saved under `fuzz/findings/` (not committed).\n\n');
    appendFileSync(file, md + '\n');
  }
  console.log(md);
  const t = table(results);
  console.error(`\nsummary: ${results.length} inputs in ${durationS.toFixed(0)} s; ` + CATEGORIES.map((c) => `${c} ${OUTCOMES.map((o) => `${o}:${t[c][o]}`).join(' ')}`).join(' | '));
  const missed = targets(summary).filter((x) => !x.met);
  console.error(missed.length ? `targets missed: ${missed.map((x) => x.name).join('; ')}` : 'all targets met');
  if (args['keep-state'] || missed.length) log(`state kept in ${stateDir}`);
  await stack.stop().catch((e: Error) => log(`stack stop: ${e.message}`));
  if (!args['keep-state'] && !missed.length) rmSync(stateDir, { recursive: true, force: true });
  process.exit(0);
}

await main();
