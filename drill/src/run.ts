#!/usr/bin/env node
/**
 * npm run drill [-- --quick] [--delivery proxy|queue] [--messages N] [--concurrency C] [--seed S] [--interval SECONDS] [--keep-state]
 *
 * The fault drill: N unique messages (X-Drill-Id and Message-ID; 10 % carry EICAR) through the
 * real local stack (NATS, s3rver, clamd, the dev mailbox as upstream, scanner ×2, reassembler ×2,
 * smtp-gateway ×1) while processes are killed and restarted, clamd is frozen, S3 and (once) NATS
 * are restarted. The client retries like an MTA. Then every drill id is tallied from the client's
 * view and from the dev mailbox's maildir: delivered once, lost, duplicated, 4xx-but-delivered,
 * 5xx, pending, infected content delivered. With `--delivery queue` the gateway runs in queue mode
 * (250 once the message is durable; the reassemblers deliver it) and the tally waits until the
 * queue is empty, attributing each copy by the queue reference in its Received line. Appends a section to drill/RESULTS.md and writes the
 * JSON to drill/results/<timestamp>.json. Exits 1 when a target is missed.
 */
import { execSync } from 'node:child_process';
import { appendFileSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { setTimeout as sleep } from 'node:timers/promises';
import { startStack, type LocalStack, type RunningService } from '@mailwarden/local-stack';
import { MessageFactory } from '@mailwarden/testkit';
import { FaultInjector } from './faults.js';
import { computeTargets, renderMarkdown, type DrillParams, type DrillReport } from './report.js';
import { seededRandom } from './rng.js';
import { DrillSender } from './sender.js';
import { INHERENT, readDeliveries, tally, type MessageTally } from './tally.js';
import { drainQueue, interruptedCounts } from './queue-drain.js';

const DRILL_DIR = fileURLToPath(new URL('../', import.meta.url));
const REPO_ROOT = fileURLToPath(new URL('../../', import.meta.url));

const { values: args } = parseArgs({
  options: {
    quick: { type: 'boolean', default: false },
    delivery: { type: 'string', default: 'proxy' },
    messages: { type: 'string' },
    concurrency: { type: 'string', default: '8' },
    seed: { type: 'string' },
    interval: { type: 'string' },
    'keep-state': { type: 'boolean', default: false },
  },
});

const log = (msg: string): void => console.error(`[drill ${new Date().toISOString().slice(11, 19)}] ${msg}`);

function gitCommit(): string {
  try {
    const sha = execSync('git rev-parse --short HEAD', { cwd: REPO_ROOT, stdio: ['ignore', 'pipe', 'ignore'] }).toString().trim();
    const dirty = execSync('git status --porcelain -- . ":!drill/RESULTS.md"', { cwd: REPO_ROOT, stdio: ['ignore', 'pipe', 'ignore'] }).toString().trim() ? '+dirty' : '';
    return sha + dirty;
  } catch {
    return 'unknown';
  }
}

function positiveInt(text: string | undefined, fallback: number, name: string): number {
  if (text === undefined) return fallback;
  const n = Number(text);
  if (!Number.isInteger(n) || n < 1) throw new Error(`--${name} must be a positive integer`);
  return n;
}

function countGatewayEvents(stateDir: string): Record<string, number> {
  const counts: Record<string, number> = {};
  let text: string;
  try {
    text = readFileSync(join(stateDir, 'logs', 'smtp-gateway.log'), 'utf8');
  } catch {
    return counts;
  }
  for (const m of text.matchAll(/"event":"(smtp\.[a-z_]+|upstream\.[a-z_]+)"/g)) counts[m[1]!] = (counts[m[1]!] ?? 0) + 1;
  return counts;
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

async function main(): Promise<number> {
  const quick = args.quick!;
  const seed = positiveInt(args.seed, Math.floor(Math.random() * 1e9) + 1, 'seed');
  const delivery = args.delivery;
  if (delivery !== 'proxy' && delivery !== 'queue') throw new Error('--delivery must be proxy or queue');
  const params: DrillParams = {
    delivery,
    messages: positiveInt(args.messages, quick ? 2400 : 10_000, 'messages'),
    concurrency: positiveInt(args.concurrency, 8, 'concurrency'),
    seed,
    quick,
    faultIntervalMs: Number(args.interval ?? (quick ? 3 : 4)) * 1000,
    clamdStallMs: 5000,
    scanners: 2,
    reassemblers: 2,
    gateways: 1,
    infectedRatio: 0.1,
    attachmentBytes: 4096,
    retry: { maxAttempts: 12, maxAgeMs: 10 * 60_000, delaysMs: [1000, 2000, 4000, 8000, 15_000] },
  };
  if (!(params.faultIntervalMs > 0)) throw new Error('--interval must be a positive number of seconds');
  const random = seededRandom(seed);
  const runTag = `d${Date.now().toString(36)}`;
  log(`${params.messages} messages, concurrency ${params.concurrency}, seed ${seed}, a fault every ~${params.faultIntervalMs / 1000} s`);

  const stateDir = await mkdtemp(join(tmpdir(), 'mw-drill-'));
  // The logs of a run that missed a target are kept (the report names the directory).
  let keepState = args['keep-state']!;
  let stack: LocalStack | undefined;
  let faults: FaultInjector | undefined;
  const cleanup = async (): Promise<void> => {
    await faults?.cleanup();
    await stack?.stop().catch((err: unknown) => log(`stack stop: ${(err as Error).message}`));
    await faults?.stopReplacements();
  };
  const onSignal = (): void => {
    log('interrupted: stopping the stack');
    void cleanup().finally(() => process.exit(130));
  };
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);

  try {
    // No ops listeners: their port-0 sockets could take a port the gateway must get back after a restart.
    // Queue mode: retries within the drill's patience (defaults: 1 min doubling to 1 h).
    const queueEnv: Record<string, string> = delivery === 'queue' ? { SMTP_DELIVERY: 'queue', QUEUE_RETRY_MIN_MS: '500', QUEUE_RETRY_MAX_MS: '4000' } : {};
    stack = await startStack({ stateDir, env: { OPS_LISTEN: 'off', ...queueEnv } });
    const services: Record<string, RunningService[]> = { scanner: [], reassembler: [], 'smtp-gateway': [] };
    for (let i = 0; i < params.scanners; i++) services.scanner!.push(await stack.startService('scanner'));
    for (let i = 0; i < params.reassemblers; i++) services.reassembler!.push(await stack.startService('reassembler'));
    services['smtp-gateway']!.push(await stack.startService('smtp-gateway'));
    const [host, port] = [stack.env.SMTP_LISTEN.slice(0, stack.env.SMTP_LISTEN.lastIndexOf(':')), Number(stack.env.SMTP_LISTEN.slice(stack.env.SMTP_LISTEN.lastIndexOf(':') + 1))];
    log(`stack up in ${stateDir}; gateway on ${host}:${port}, upstream dev mailbox ${stack.env.SMTP_UPSTREAM}`);

    const factory = new MessageFactory(params.attachmentBytes, params.infectedRatio, 'drill@example.test');
    const sender = new DrillSender({
      host,
      port,
      concurrency: params.concurrency,
      count: params.messages,
      from: 'drill-sender@drill.example',
      to: 'drill@example.test',
      build: (i) => {
        const m = factory.message(i);
        const id = `${runTag}-${String(i).padStart(6, '0')}`;
        return { id, infected: m.infected, data: Buffer.concat([Buffer.from(`X-Drill-Id: ${id}\r\n`, 'latin1'), m.data]) };
      },
      retry: params.retry,
      replyTimeoutMs: 300_000,
      random,
    });

    const t0 = Date.now();
    faults = new FaultInjector({ stack, services, random, t0, stallMs: params.clamdStallMs, log });
    const stopFaults = new AbortController();
    const natsAt = Math.floor(params.messages * (0.3 + 0.3 * random()));
    const faultLoop = faults.run(params.faultIntervalMs, () => sender.started >= natsAt, stopFaults.signal);
    let faultWindowS = 0;
    const endFaults = async (why: string): Promise<void> => {
      if (!stopFaults.signal.aborted) {
        faultWindowS = (Date.now() - t0) / 1000;
        stopFaults.abort();
        log(`${why}: no more faults`);
      }
      await faultLoop;
    };
    const ticker = setInterval(() => {
      const p = sender.progress();
      log(`started ${p.started}/${params.messages}, accepted ${p.accepted}, refused ${p.refused}, pending ${p.pending}, waiting retry ${p.waitingRetry}, attempts ${p.attempts}, faults ${faults!.records.length}`);
      // Proxy mode: the work is done while the sender waits; queue mode: mostly after its 250, so faults go on until the queue is empty.
      if (delivery === 'proxy' && sender.allStarted) void endFaults('every message had its first attempt');
    }, 2000);
    let queueDrain: DrillReport['queueDrain'];
    let durationS: number;
    try {
      await sender.run();
      durationS = (Date.now() - t0) / 1000;
      if (delivery === 'queue') {
        const refs = sender.messages.flatMap((m) => m.attempts.map((a) => /queued as (\S+)/.exec(a.reply)?.[1]).filter((r): r is string => !!r));
        log(`load done in ${durationS.toFixed(0)} s; waiting for the queue to deliver ${refs.length} accepted message(s), faults going on`);
        queueDrain = await drainQueue(stack.natsClient(), refs, 15 * 60_000, log);
      }
    } finally {
      clearInterval(ticker);
      await endFaults(delivery === 'queue' ? 'the queue is empty' : 'load done');
    }
    if (queueDrain) {
      // A fault in the last poll of the drain (a worker killed mid-delivery) may have left work: drain again, quietly.
      const again = await drainQueue(stack.natsClient(), queueDrain.unfinished, 15 * 60_000, log);
      queueDrain = { waitedS: queueDrain.waitedS + again.waitedS, unfinished: again.unfinished };
    }
    log(`reading the maildir`);
    await sleep(3000); // a copy whose final reply was lost may still be on its way to disk

    const unexpectedlyDead = Object.values(services)
      .flat()
      .filter((s) => !alive(s.pid))
      .map((s) => `${s.name} pid ${s.pid}`);
    if (unexpectedlyDead.length) log(`services dead at the end (not killed by the drill): ${unexpectedlyDead.join(', ')}`);

    const deliveries = await readDeliveries(stack.env.DEV_MAILBOX_DIR);
    const interrupted = delivery === 'queue' ? await interruptedCounts(stack.natsClient(), new Set(deliveries.flatMap((d) => (d.ref ? [d.ref] : [])))) : undefined;
    const t = tally(sender.messages, deliveries, interrupted ? { queue: { interrupted: (ref) => interrupted.get(ref) ?? 0 } } : {});
    const byId = new Map(sender.messages.map((m) => [m.id, m]));
    const delivByid = new Map<string, typeof deliveries>();
    for (const d of deliveries) if (d.drillId) delivByid.set(d.drillId, [...(delivByid.get(d.drillId) ?? []), d]);
    const detail = (v: MessageTally): DrillReport['violations'][number] => ({
      id: v.id,
      verdict: v.verdict,
      infected: v.infected,
      infectedDelivered: v.infectedDelivered,
      altered: v.altered,
      attempts: byId.get(v.id)!.attempts,
      deliveries: (delivByid.get(v.id) ?? []).sort((a, b) => a.mtimeMs - b.mtimeMs).map(({ file, mtimeMs, size, eicar, notice }) => ({ file, mtimeMs, size, eicar, notice })),
      attribution: v.attribution,
    });
    const { perMessage, violations, ...summary } = t;
    const date = new Date().toISOString();
    const report: DrillReport = {
      date: `${date.slice(0, 16).replace('T', ' ')} UTC`,
      commit: gitCommit(),
      params,
      durationS,
      faultWindowS,
      ...(queueDrain ? { queueDrain } : {}),
      faults: faults.records,
      tally: summary,
      targets: computeTargets(t),
      gatewayEvents: countGatewayEvents(stateDir),
      violations: violations.map(detail),
      inherent: perMessage.filter((m) => INHERENT.includes(m.verdict)).map(detail),
      odd: perMessage.filter((m) => m.odd).map((m) => m.id),
    };
    if (queueDrain?.unfinished.length) report.targets.push({ name: 'queue empty at the end', met: false, value: `${queueDrain.unfinished.length} accepted message(s) unfinished after ${queueDrain.waitedS.toFixed(0)} s` });
    if (unexpectedlyDead.length) report.targets.push({ name: 'every service alive at the end', met: false, value: unexpectedlyDead.join(', ') });
    const allMet = report.targets.every((g) => g.met);
    if (!allMet) keepState = true;
    if (keepState) report.stateDir = stateDir;

    const md = renderMarkdown(report);
    console.log(md);
    const resultsDir = join(DRILL_DIR, 'results');
    mkdirSync(resultsDir, { recursive: true });
    const stamp = date.replace(/[:.]/g, '-');
    writeFileSync(join(resultsDir, `${stamp}.json`), JSON.stringify({ ...report, messages: sender.messages, perMessage }, null, 1));
    const resultsMd = join(DRILL_DIR, 'RESULTS.md');
    if (!existsSync(resultsMd)) writeFileSync(resultsMd, '# Fault drill results\n\nAppended by `npm run drill` (see README, "Fault drill"). Newest last.\n\n');
    appendFileSync(resultsMd, `${md}\nJSON: \`drill/results/${stamp}.json\` (not committed).\n\n`);
    log(`report appended to drill/RESULTS.md; JSON in drill/results/${stamp}.json${report.stateDir ? `; state kept in ${stateDir}` : ''}`);
    return allMet ? 0 : 1;
  } finally {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
    await cleanup();
    if (!keepState) await rm(stateDir, { recursive: true, force: true }).catch(() => undefined);
  }
}

main().then(
  (code) => process.exit(code),
  (err: unknown) => {
    console.error(err);
    process.exit(2);
  },
);
