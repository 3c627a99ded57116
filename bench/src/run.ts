#!/usr/bin/env node
/**
 * npm run bench -- --peers [--quick] [--only <workload,...>]   (Mailwarden vs ClamSMTP vs Haraka; see peers-run.ts)
 * npm run bench -- --scaling [--quick]   (the scanner tier resized: 1 vs 2 scanners and clamds; see scaling-run.ts)
 * npm run bench [-- --quick] [--profile] [--only <id,...>] [--stack-from-env] [--scan-cache off]
 *               [--s3-count accounting|all] [--no-memory] [--no-mass] [--keep-state]
 *
 * Brings up the local stack (or uses NATS/S3/clamd from the environment), a discarding SMTP sink
 * and a counting S3 proxy, starts the Mailwarden services, and measures: the raw clamd INSTREAM
 * ceiling, the direct-to-sink baseline, Mailwarden at several sizes and concurrencies, a mass
 * mailing (scan cache) and a 50 MB message (memory). Prints a markdown report and writes it, with
 * the JSON, to bench/results/.
 *
 * Order: the services first run behind the counting S3 proxy (object-store accounting, memory,
 * mass mailing); then they are restarted talking to S3 directly for the throughput phases, so the
 * proxy's CPU and latency do not weigh on them (`--s3-count all` keeps the proxy throughout).
 */
import { execSync } from 'node:child_process';
import { copyFileSync, mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { cpus, loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { parseArgs } from 'node:util';
import { fileURLToPath } from 'node:url';
import { setTimeout as sleep } from 'node:timers/promises';
import { readSettings } from '@mailwarden/config';
import { MaildirStore } from '@mailwarden/dev-mailbox';
import { startBenchStack, type BenchStack } from './bench-stack.js';
import { LogCursor } from './log-events.js';
import { MessageFactory, massMailing } from './messages.js';
import { fullPlan, quickPlan, MB, type Plan } from './plan.js';
import { MW, ceilingPhase, loadPhase, measured, warmUp } from './phases.js';
import { pop3Retrieve } from './pop3-client.js';
import { summarise } from './profile-summary.js';
import { aggregate, computeTargets, renderMarkdown, type MassMailingResult, type MemoryResult, type PhaseResult, type ProcFigures, type RunReport } from './report.js';
import { runLoad, SmtpConnection } from './smtp-load.js';
import { aggregateScaling, renderScalingMarkdown, runScaling, sampleBox, type ScalingReport } from './scaling-run.js';
import { aggregatePeers, DEPLOYMENTS, PEER_VERSIONS, peerTargets, renderPeersMarkdown, runPeers, type PeersReport } from './peers-run.js';

const BENCH_DIR = fileURLToPath(new URL('../', import.meta.url));
const REPO_ROOT = fileURLToPath(new URL('../../', import.meta.url));

const { values: args } = parseArgs({
  options: {
    quick: { type: 'boolean', default: false },
    profile: { type: 'boolean', default: false },
    only: { type: 'string' },
    'stack-from-env': { type: 'boolean', default: false },
    'scan-cache': { type: 'string', default: 'on' },
    'no-memory': { type: 'boolean', default: false },
    'no-mass': { type: 'boolean', default: false },
    'keep-state': { type: 'boolean', default: false },
    's3-count': { type: 'string', default: 'accounting' },
    peers: { type: 'boolean', default: false },
    scaling: { type: 'boolean', default: false },
  },
});

const log = (msg: string): void => console.error(`[bench ${new Date().toISOString().slice(11, 19)}] ${msg}`);

function gitCommit(): string {
  try {
    const sha = execSync('git rev-parse --short HEAD', { cwd: REPO_ROOT, stdio: ['ignore', 'pipe', 'ignore'] }).toString().trim();
    const dirty = execSync('git status --porcelain', { cwd: REPO_ROOT, stdio: ['ignore', 'pipe', 'ignore'] }).toString().trim() ? '+dirty' : '';
    return sha + dirty;
  } catch {
    return 'unknown';
  }
}

async function massMailingPhase(stack: BenchStack, plan: Plan['massMailing'], scannerLog: LogCursor): Promise<MassMailingResult> {
  const mm = massMailing(plan.size);
  scannerLog.take();
  await stack.s3counter.reset();
  const { result, procs } = await measured(stack.pids, (r) => r.ok, () =>
    runLoad({
      ...stack.smtp, concurrency: plan.concurrency, maxMessages: plan.messages, maxSeconds: plan.maxSeconds,
      message: (i) => ({ data: mm.message(i, `rcpt${i}@example.test`), to: [`rcpt${i}@example.test`] }),
    }),
  );
  const analysed = scannerLog.take().filter((l) => l.event === 'message.analysed');
  const sum = (k: string): number => analysed.reduce((a, l) => a + (Number(l[k]) || 0), 0);
  const attachmentScans = analysed.filter((l) => Array.isArray(l.scanned) && (l.scanned as unknown[]).includes(mm.sha256)).length;
  return {
    messages: plan.messages, concurrency: plan.concurrency, attachmentBytes: plan.size, ok: result.ok, seconds: result.elapsedS, msgsPerS: result.ok / result.elapsedS,
    attachmentScans, attachmentCacheHits: Math.max(0, result.ok - attachmentScans),
    scanned: sum('engineScans'), cacheHits: sum('cacheHits'),
    mwCpuMsPerMsg: MW.reduce((a, s) => a + (procs[s]?.cpuMsPerUnit ?? 0), 0),
    clamdCpuMsPerMsg: procs.clamd?.cpuMsPerUnit ?? NaN,
    s3RequestsPerMsg: (await stack.s3counter.stats()).requests! / Math.max(1, result.ok),
  };
}

function growth(procs: Record<string, ProcFigures>, names: string[]): { growthMb: Record<string, number>; peakMb: Record<string, number> } {
  const growthMb: Record<string, number> = {};
  const peakMb: Record<string, number> = {};
  for (const n of names) {
    const p = procs[n];
    if (!p) continue;
    growthMb[n] = p.peakMb - p.rssStartMb;
    peakMb[n] = p.peakMb;
  }
  return { growthMb, peakMb };
}

async function memoryPhases(stack: BenchStack, attachmentBytes: number): Promise<MemoryResult[]> {
  const out: MemoryResult[] = [];
  const factory = new MessageFactory(attachmentBytes, 0);
  const big = factory.message(0).data;
  const infra = ['nats', 's3rver', 'clamd'];

  // SMTP: client → gateway → (S3, scanner, clamd, reassembler) → sink.
  {
    await stack.sink.reset();
    const t0 = Date.now();
    const { result, procs } = await measured(stack.pids, () => 1, async () => {
      const c = await SmtpConnection.open(stack.smtp.host, stack.smtp.port, 600_000);
      try {
        return await c.send('sender@bench.example', ['user@example.test'], big);
      } finally {
        await c.quit();
      }
    });
    const sink = await stack.sink.stats();
    const ok = result.code === 250 && sink.messages === 1;
    out.push({
      protocol: 'smtp', attachmentBytes, messageBytes: big.length, ok, seconds: (Date.now() - t0) / 1000,
      detail: `${result.code} ${result.text.slice(0, 80)}; sink got ${sink.messages} message(s), ${((sink.bytes ?? 0) / MB).toFixed(1)} MB`,
      ...growth(procs, [...MW, ...infra]),
    });
  }

  // POP3: the message in the mailbox (Dovecot) → pop3-gateway (scan) → client.
  if (stack.pop3 && stack.services['pop3-gateway']) {
    const user = `benchpop${process.pid}`;
    await new MaildirStore(stack.pop3.mailRoot).deliver(Readable.from([big]), [user]);
    const t0 = Date.now();
    let detail = '';
    let ok = false;
    const { procs } = await measured(stack.pids, () => 1, async () => {
      try {
        const r = await pop3Retrieve({ ...stack.pop3!, user, password: 'password', timeoutMs: 600_000 });
        ok = r.bytes >= big.length;
        detail = `${r.status.slice(0, 40)}; ${(r.bytes / MB).toFixed(1)} MB retrieved`;
      } catch (err) {
        detail = (err as Error).message;
      }
    });
    out.push({ protocol: 'pop3', attachmentBytes, messageBytes: big.length, ok, seconds: (Date.now() - t0) / 1000, detail, ...growth(procs, ['pop3-gateway', 'scanner', 'reassembler', ...infra]) });
  }
  return out;
}

function debVersion(pkg: string): string {
  try {
    return execSync(`dpkg-query -W -f='\${Version}' ${pkg}`, { stdio: ['ignore', 'pipe', 'ignore'] }).toString().trim() || '?';
  } catch {
    return '?';
  }
}

/**
 * Starts the bench stack as the throughput modes use it (S3 direct, no POP3), runs `work` on it
 * and stops it; the state dir is left for writeReport.
 */
async function onThroughputStack<T>(mode: string, work: (stack: BenchStack, stateDir: string) => Promise<T>): Promise<{ stateDir: string; out: T }> {
  const stateDir = mkdtempSync(join(tmpdir(), `mw-bench-${mode}-`));
  log(`state in ${stateDir}; starting the stack`);
  const stack = await startBenchStack({ stateDir, fromEnv: args['stack-from-env'], pop3: false, s3: 'direct', maxMessageBytes: 0, serviceEnv: { SCAN_CACHE: args['scan-cache'] } });
  try {
    log(`stack up: ${Object.entries(stack.pids).map(([n, p]) => `${n}=${p}`).join(' ')}`);
    return { stateDir, out: await work(stack, stateDir) };
  } finally {
    log('stopping');
    await stack.stop();
  }
}

/** `--peers`: only the side-by-side comparison (the other phases: run without --peers). */
async function peersMain(): Promise<void> {
  const only = args.only?.split(',').map((s) => s.trim()).filter(Boolean);
  const startedAt = new Date().toISOString();
  const commit = gitCommit();
  const { stateDir, out } = await onThroughputStack('peers', (stack, stateDir) => runPeers(stack, { quick: args.quick, stateDir, log, ...(only ? { only } : {}) }));
  const rows = aggregatePeers(out.plan, out.runs);
  const report: PeersReport = {
    startedAt,
    durationS: (Date.now() - Date.parse(startedAt)) / 1000,
    mode: `${args.quick ? 'quick' : 'full'}${only ? `, only ${only.join(',')}` : ''}`,
    machine: { cpus: cpus().length, model: cpus()[0]?.model ?? '?', node: process.versions.node, commit },
    versions: { clamsmtp: debVersion('clamsmtp'), 'clamav-daemon': debVersion('clamav-daemon'), ...PEER_VERSIONS },
    deployments: DEPLOYMENTS,
    rows,
    targets: peerTargets(rows),
    runs: out.runs,
    notes: out.notes,
  };
  writeReport('peers-', startedAt, report, renderPeersMarkdown(report), stateDir);
}

/**
 * Prints the report and writes it to bench/results/: `<prefix><timestamp>.{md,json}` and
 * `<prefix>latest.{md,json}` (the main run's prefix is empty: `bench-<timestamp>`, `latest`).
 * Removes the state dir unless --keep-state.
 */
function writeReport(prefix: string, startedAt: string, report: object, md: string, stateDir: string): void {
  const resultsDir = join(BENCH_DIR, 'results');
  mkdirSync(resultsDir, { recursive: true });
  const stamp = `${prefix || 'bench-'}${startedAt.replace(/[:.]/g, '-')}`;
  writeFileSync(join(resultsDir, `${stamp}.json`), JSON.stringify(report, null, 2));
  writeFileSync(join(resultsDir, `${stamp}.md`), md);
  writeFileSync(join(resultsDir, `${prefix}latest.md`), md);
  writeFileSync(join(resultsDir, `${prefix}latest.json`), JSON.stringify(report, null, 2));
  console.log(md);
  log(`written to bench/results/${stamp}.{md,json}`);
  if (!args['keep-state']) rmSync(stateDir, { recursive: true, force: true });
  else log(`state kept in ${stateDir}`);
}

/** `--scaling`: only the scanner-tier scaling phases (see scaling-run.ts). */
async function scalingMain(): Promise<void> {
  const startedAt = new Date().toISOString();
  const commit = gitCommit();
  log('sampling the box before starting anything (3 s)');
  const boxBefore = await sampleBox();
  log(`box: load average ${boxBefore.loadavg.map((x) => x.toFixed(2)).join(' ')}, ${boxBefore.busyCores.toFixed(2)} cores busy`);
  const { stateDir, out } = await onThroughputStack('scaling', (stack, stateDir) => runScaling(stack, { quick: args.quick, stateDir, log }));
  const settings = readSettings(process.env); // what the services read: the environment over the documented defaults
  const report: ScalingReport = {
    startedAt,
    durationS: (Date.now() - Date.parse(startedAt)) / 1000,
    mode: args.quick ? 'quick' : 'full',
    machine: { cpus: cpus().length, model: cpus()[0]?.model ?? '?', node: process.versions.node, commit },
    boxBefore,
    boxAfter: { loadavg: loadavg() },
    clamd: out.clamd,
    scannerDefaults: { SCANNER_CONCURRENCY: settings.SCANNER_CONCURRENCY, SCANNER_PART_CONCURRENCY: settings.SCANNER_PART_CONCURRENCY },
    rows: aggregateScaling(out.plan, out.runs),
    ceilings: out.ceilings,
    runs: out.runs,
    notes: args['scan-cache'] === 'off' ? ['Scan cache switched off (SCAN_CACHE=off).'] : [],
  };
  writeReport('scaling-', startedAt, report, renderScalingMarkdown(report), stateDir);
}

async function main(): Promise<void> {
  if (args.peers) return peersMain();
  if (args.scaling) return scalingMain();
  const plan = args.quick ? quickPlan() : fullPlan();
  const only = args.only?.split(',').map((s) => s.trim()).filter(Boolean);
  const phases = plan.phases;
  const startedAt = new Date().toISOString();
  const commit = gitCommit(); // the code the services are started from, not the tree at the end
  const stateDir = mkdtempSync(join(tmpdir(), 'mw-bench-'));
  const profileDir = join(stateDir, 'profiles');
  if (args.profile) mkdirSync(profileDir, { recursive: true });
  const notes: string[] = [];
  if (args.profile) notes.push('Profile run: the services ran under --cpu-prof, which inflates their CPU; use a normal run for the figures.');
  if (args['scan-cache'] === 'off') notes.push('Scan cache switched off (SCAN_CACHE=off).');

  log(`state in ${stateDir}; starting the stack`);
  const stack = await startBenchStack({
    stateDir,
    fromEnv: args['stack-from-env'],
    pop3: !args['no-memory'],
    s3: 'counted',
    maxMessageBytes: 128 * MB,
    serviceEnv: { SCAN_CACHE: args['scan-cache'] },
    ...(args.profile ? { nodeArgs: ['--enable-source-maps', '--cpu-prof', `--cpu-prof-dir=${profileDir}`] } : {}),
  });
  const scannerLog = new LogCursor(stack.services.scanner!.logFile);
  const results: PhaseResult[] = [];
  let mass: MassMailingResult | undefined;
  let memory: MemoryResult[] = [];
  const countAll = args['s3-count'] === 'all';
  const wanted = (id: string): boolean => !only || only.some((o) => id.includes(o));
  const runPhase = async (p: Plan['phases'][number], s3Counted: boolean): Promise<void> => {
    await sleep(1000);
    const r = p.kind === 'clamd' ? await ceilingPhase(stack, p) : await loadPhase(stack, p, scannerLog, s3Counted);
    results.push(r);
    log(
      `${p.id}: ${r.count} in ${r.elapsedS.toFixed(1)} s = ${r.ratePerS.toFixed(1)}/s, p50 ${r.p50Ms.toFixed(1)} ms, p99 ${r.p99Ms.toFixed(1)} ms, errors ${r.errors}` +
        (r.mwCpuMsPerMsg !== undefined ? `, MW CPU ${r.mwCpuMsPerMsg.toFixed(1)} ms/msg` : '') +
        (r.s3PerMsg ? `, S3 ${r.s3PerMsg.requests?.toFixed(2)} req/msg` : '') +
        (r.errorSamples.length ? ` [${r.errorSamples.join(' | ')}]` : ''),
    );
    if (p.kind === 'mailwarden' && p.infectedRatio > 0 && r.infectedSent !== r.infectedFound) {
      notes.push(`${p.id}: ${r.infectedSent} infected messages accepted but the sink saw ${r.infectedFound} notices.`);
    }
  };
  try {
    log(`stack up: ${Object.entries(stack.pids).map(([n, p]) => `${n}=${p}`).join(' ')}`);
    // Warm-up (JIT, connections, bucket region lookups): not measured.
    await warmUp(stack, log);
    // 1. Behind the counting S3 proxy: round trips per message, memory, mass mailing.
    for (const p of plan.accounting.filter((p) => wanted(p.id))) await runPhase(p, true);
    if (!args['no-memory'] && wanted('memory')) {
      await sleep(1000);
      memory = await memoryPhases(stack, plan.memory.attachmentBytes);
      for (const m of memory) log(`memory ${m.protocol}: ${m.ok ? 'ok' : 'FAILED'} ${m.detail}; growth ${JSON.stringify(Object.fromEntries(Object.entries(m.growthMb).map(([k, v]) => [k, Math.round(v)])))}`);
    }
    if (!args['no-mass'] && wanted('mass')) {
      await sleep(1000);
      mass = await massMailingPhase(stack, plan.massMailing, scannerLog);
      log(`mass mailing: ${mass.ok} msgs, ${mass.msgsPerS.toFixed(1)}/s, attachment scanned ${mass.attachmentScans}×, ${mass.attachmentCacheHits} cache hits`);
    }
    // 2. Throughput phases, S3 direct (unless --s3-count all).
    const rest = phases.filter((p) => wanted(p.id));
    if (rest.length) {
      if (!countAll) {
        log('restarting the services with S3 direct (no counting proxy)');
        await stack.restartServices('direct');
        await warmUp(stack, log);
      }
      for (let round = 0; round < plan.rounds; round++) {
        for (const p of rest) if (round === 0 || p.repeat) await runPhase(p, countAll);
      }
    }
  } finally {
    log('stopping');
    await stack.stop();
  }

  const report: RunReport = {
    startedAt,
    durationS: (Date.now() - Date.parse(startedAt)) / 1000,
    mode: `${args.quick ? 'quick' : 'full'}${args.profile ? ', profile' : ''}${only ? `, only ${only.join(',')}` : ''}`,
    machine: { cpus: cpus().length, model: cpus()[0]?.model ?? '?', node: process.versions.node, commit },
    phases: aggregate(results),
    runs: results,
    ...(mass ? { massMailing: mass } : {}),
    memory,
    targets: computeTargets(aggregate(results), memory, mass),
    notes,
  };
  let md = renderMarkdown(report);

  if (args.profile) {
    const files = readdirSync(profileDir).filter((f) => f.endsWith('.cpuprofile'));
    const byPid = new Map(stack.history.map((h) => [h.pid, h.s3 === 'counted' && !countAll ? `${h.name} (accounting, memory and mass-mailing phases)` : h.name]));
    const sections: string[] = ['## CPU profiles (self time)', ''];
    for (const file of files) {
      const pid = Number(/\.(\d+)\.\d+\.\d+\.cpuprofile$/.exec(file)?.[1]);
      const s = summarise(join(profileDir, file), 30);
      sections.push(`### ${byPid.get(pid) ?? `pid ${pid}`} — busy ${s.busyMs.toFixed(0)} ms`, '');
      sections.push('| origin | ms | share |', '|---|---|---|', ...s.byOrigin.slice(0, 15).map((o) => `| ${o.origin} | ${o.ms.toFixed(0)} | ${(o.share * 100).toFixed(1)}% |`), '');
      sections.push('| function | origin | ms | share |', '|---|---|---|---|', ...s.byFunction.map((o) => `| \`${o.fn}\` | ${o.origin} | ${o.ms.toFixed(0)} | ${(o.share * 100).toFixed(1)}% |`), '');
    }
    md += '\n' + sections.join('\n');
    const keep = join(BENCH_DIR, 'results', `profiles-${startedAt.replace(/[:.]/g, '-')}`);
    mkdirSync(keep, { recursive: true });
    for (const file of files) copyFileSync(join(profileDir, file), join(keep, file));
    notes.push(`Raw profiles in ${keep} (open in Chrome DevTools).`);
  }

  writeReport('', startedAt, report, md, stateDir);
}

main().catch((err: unknown) => {
  console.error(`bench failed: ${(err as Error).stack ?? String(err)}`);
  process.exit(1);
});
