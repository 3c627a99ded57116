/**
 * What arrived upstream (the dev mailbox's maildir), per X-Drill-Id, set against what the client
 * was told. Each delivery is attributed to the attempt that produced it. Proxy mode: the last
 * attempt of that message that started before the file was written (attempts of one message never
 * overlap). Queue mode (delivery happens later): the attempt whose reply quoted the copy's queue
 * reference (the `id` of the gateway's Received line); a reference no reply quoted belongs to an
 * attempt whose final reply was lost.
 */
import { createHash } from 'node:crypto';
import { readdir, readFile, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { EICAR } from '@mailwarden/testkit';
import type { AttemptRecord, DrillMessage } from './sender.js';

export interface Delivery {
  file: string;
  drillId: string | undefined;
  mtimeMs: number;
  size: number;
  sha256: string;
  /** sha256 without the Received line a queue-mode gateway puts first. */
  bodySha256: string;
  /** Queue mode: the gateway's queue reference (the `id` clause of its Received line). */
  ref: string | undefined;
  /** EICAR found in the delivered bytes (raw, or inside any base64 block). */
  eicar: boolean;
  /** The removal notice is there. */
  notice: boolean;
}

const NOTICE = 'Mailwarden removed the attachment';

function containsEicar(raw: Buffer): boolean {
  if (raw.includes(EICAR)) return true;
  let run: string[] = [];
  const check = (): boolean => {
    const found = run.length > 0 && Buffer.from(run.join(''), 'base64').includes(EICAR);
    run = [];
    return found;
  };
  for (const line of raw.toString('latin1').split(/\r?\n/)) {
    if (/^[A-Za-z0-9+/]{4,}={0,2}$/.test(line)) run.push(line);
    else if (check()) return true;
  }
  return check();
}

/** The bytes after a first header that is the gateway's own Received line (with its folded lines). */
function withoutOurReceived(raw: Buffer): Buffer {
  if (!raw.subarray(0, 10).equals(Buffer.from('Received: '))) return raw;
  let end = raw.indexOf('\r\n');
  while (end >= 0 && (raw[end + 2] === 0x20 || raw[end + 2] === 0x09)) end = raw.indexOf('\r\n', end + 2);
  if (end < 0 || !raw.subarray(0, end).includes('(Mailwarden)')) return raw;
  return raw.subarray(end + 2);
}

export async function readDeliveries(mailRoot: string): Promise<Delivery[]> {
  const out: Delivery[] = [];
  const users = await readdir(mailRoot).catch(() => [] as string[]);
  for (const user of users) {
    for (const sub of ['new', 'cur']) {
      const dir = join(mailRoot, user, sub);
      const names = await readdir(dir).catch(() => [] as string[]);
      for (const name of names) {
        const file = join(dir, name);
        const [raw, st] = await Promise.all([readFile(file), stat(file)]);
        const headerEnd = raw.indexOf('\r\n\r\n');
        const head = raw.subarray(0, headerEnd < 0 ? raw.length : headerEnd).toString('latin1');
        out.push({
          file,
          drillId: /^X-Drill-Id:[ \t]*(\S+)/im.exec(head)?.[1],
          ref: /^Received:[^\r\n]*(?:\r\n[ \t][^\r\n]*)*? \(Mailwarden\) with \S+ id ([^;\s]+);/im.exec(head)?.[1],
          mtimeMs: st.mtimeMs,
          size: raw.length,
          sha256: createHash('sha256').update(raw).digest('hex'),
          bodySha256: createHash('sha256').update(withoutOurReceived(raw)).digest('hex'),
          eicar: containsEicar(raw),
          notice: raw.includes(NOTICE),
        });
      }
    }
  }
  return out;
}

export type Verdict =
  | 'delivered-once'
  | 'lost'
  | 'duplicated'
  | 'duplicate-after-lost-reply'
  | 'duplicate-after-interrupted-delivery'
  | 'delivered-after-lost-reply'
  | 'tempfail-delivered'
  | 'refused'
  | 'refused-but-delivered'
  | 'pending';

export interface MessageTally {
  id: string;
  verdict: Verdict;
  deliveries: number;
  infected: boolean;
  infectedDelivered: boolean;
  /** A clean message whose delivered bytes differ from what was sent. */
  altered: boolean;
  /** Some attempt got a 4xx reply or lost its connection. */
  retried: boolean;
  /** Deliveries attributed to attempts (attempt number, outcome, stage). */
  attribution: { attempt: number; outcome: string; stage: string }[];
  /** Delivered once after a 250, but the copy is not the 250 attempt's (timing looks odd). */
  odd: boolean;
}

export interface Tally {
  messages: number;
  counts: Record<Verdict, number>;
  infectedSent: number;
  infectedDelivered: number;
  infectedWithNotice: number;
  cleanAltered: number;
  /** Deliveries without a known X-Drill-Id. */
  strayDeliveries: number;
  attempts: number;
  attemptOutcomes: Record<string, number>;
  /** Messages that saw a 4xx or a lost connection on some attempt, and how they ended. */
  tempfailed: { total: number; deliveredOnce: number; pending: number; inherent: number; other: number };
  perMessage: MessageTally[];
  violations: MessageTally[];
}

export interface TallyOptions {
  /**
   * Queue mode: `interrupted(ref)` is how many delivery attempts of that reference were cut off
   * between DATA and the record of upstream's reply; as many extra copies of it are inherent.
   */
  queue?: { interrupted: (ref: string) => number };
}

/** Verdicts that are not violations although the sender or upstream may hold two copies (RFC 5321 6.1). */
export const INHERENT: Verdict[] = ['duplicate-after-lost-reply', 'delivered-after-lost-reply', 'duplicate-after-interrupted-delivery'];

/** Targets: 0 lost, 0 duplicated (beyond the inherent lost-reply case), 0 infected delivered, every 4xx ends delivered once or pending. */
export const VIOLATIONS: Verdict[] = ['lost', 'duplicated', 'tempfail-delivered', 'refused-but-delivered'];

type Attribution = { attempt: number; outcome: string; stage: string };

/** Proxy mode: the last attempt that started before the copy was written. */
function attemptByTime(attempts: AttemptRecord[], t: number): Attribution {
  let found: AttemptRecord | undefined;
  for (const a of attempts) if (a.startMs <= t + 5) found = a;
  return { attempt: found?.n ?? 0, outcome: found?.outcome ?? '?', stage: found?.stage ?? '?' };
}

/**
 * Queue mode: each copy to the attempt whose reply quoted its reference. A reference no reply
 * quoted was queued by an attempt that never saw its 250: such references go, in the order their
 * first copies arrived, to the attempts whose connection was lost after the final dot.
 */
function attributeByRef(attempts: AttemptRecord[], copies: Delivery[]): Attribution[] {
  const lostReplies = attempts.filter((a) => a.outcome === 'conn' && a.stage === 'final');
  const unquoted = new Map<string, AttemptRecord | undefined>();
  return copies.map((d) => {
    const quoted = d.ref ? attempts.find((a) => a.reply.includes(d.ref!)) : undefined;
    let a = quoted;
    if (!a && d.ref) {
      if (!unquoted.has(d.ref)) unquoted.set(d.ref, lostReplies[unquoted.size]);
      a = unquoted.get(d.ref);
    }
    return a ? { attempt: a.n, outcome: a.outcome, stage: a.stage } : { attempt: 0, outcome: '?', stage: '?' };
  });
}

/** Queue mode: the copies of one reference beyond the first that its interrupted attempts explain. */
function interruptedExtras(ds: Delivery[], interrupted: (ref: string) => number): Set<Delivery> {
  const byRef = new Map<string, Delivery[]>();
  for (const d of ds) if (d.ref) byRef.set(d.ref, [...(byRef.get(d.ref) ?? []), d]);
  const extras = new Set<Delivery>();
  for (const [ref, copies] of byRef) for (const d of copies.slice(1, 1 + interrupted(ref))) extras.add(d);
  return extras;
}

export function tally(messages: DrillMessage[], deliveries: Delivery[], opts: TallyOptions = {}): Tally {
  const byId = new Map<string, Delivery[]>();
  let strayDeliveries = 0;
  const known = new Set(messages.map((m) => m.id));
  for (const d of deliveries) {
    if (!d.drillId || !known.has(d.drillId)) {
      strayDeliveries++;
      continue;
    }
    const list = byId.get(d.drillId) ?? [];
    list.push(d);
    byId.set(d.drillId, list);
  }
  const counts = Object.fromEntries(
    (['delivered-once', 'lost', 'duplicated', 'duplicate-after-lost-reply', 'duplicate-after-interrupted-delivery', 'delivered-after-lost-reply', 'tempfail-delivered', 'refused', 'refused-but-delivered', 'pending'] as Verdict[]).map((v) => [v, 0]),
  ) as Record<Verdict, number>;
  const attemptOutcomes: Record<string, number> = {};
  const perMessage: MessageTally[] = [];
  let infectedDelivered = 0;
  let infectedWithNotice = 0;
  let cleanAltered = 0;
  let attempts = 0;
  const tempfailed = { total: 0, deliveredOnce: 0, pending: 0, inherent: 0, other: 0 };
  for (const m of messages) {
    const all = (byId.get(m.id) ?? []).sort((a, b) => a.mtimeMs - b.mtimeMs);
    const redelivered = opts.queue ? interruptedExtras(all, opts.queue.interrupted) : new Set<Delivery>();
    // Verdicts are about the copies the sender's attempts made; a redelivery of one of them after an interrupted attempt is reported apart.
    const ds = all.filter((d) => !redelivered.has(d));
    attempts += m.attempts.length;
    for (const a of m.attempts) {
      const key = a.outcome === 'conn' ? `conn@${a.stage}` : `${a.code ?? a.outcome}`;
      attemptOutcomes[key] = (attemptOutcomes[key] ?? 0) + 1;
    }
    const byAttempt = opts.queue ? attributeByRef(m.attempts, all) : all.map((d) => attemptByTime(m.attempts, d.mtimeMs));
    const attributionAll = byAttempt.map((a, k) => (redelivered.has(all[k]!) ? { ...a, stage: `${a.stage}, redelivered after an interrupted delivery` } : a));
    const attribution = attributionAll.filter((_, k) => !redelivered.has(all[k]!));
    const lostReply = (x: { outcome: string; stage: string }) => x.outcome === 'conn' && x.stage === 'final';
    const accepted = m.state === 'accepted';
    let verdict: Verdict;
    if (attribution.some((x) => x.outcome === '4xx' || (x.outcome === 'conn' && x.stage !== 'final'))) verdict = 'tempfail-delivered';
    else if (m.state === 'refused') verdict = ds.length ? 'refused-but-delivered' : 'refused';
    else if (ds.length === 0) verdict = accepted ? 'lost' : 'pending';
    else if (ds.length === 1) verdict = !accepted ? 'delivered-after-lost-reply' : redelivered.size ? 'duplicate-after-interrupted-delivery' : 'delivered-once';
    else {
      // Two or more copies: inherent only if every copy but the last accepted one belongs to an
      // attempt whose connection was lost after the final dot, and at most one copy per attempt.
      const perAttempt = new Set(attribution.map((x) => x.attempt));
      const extras = attribution.filter((x) => x.outcome !== '250');
      const okCopies = attribution.filter((x) => x.outcome === '250').length;
      verdict = perAttempt.size === attribution.length && extras.every(lostReply) && okCopies <= 1 ? 'duplicate-after-lost-reply' : 'duplicated';
    }
    counts[verdict]++;
    const infDelivered = m.infected && all.some((d) => d.eicar);
    if (infDelivered) infectedDelivered++;
    if (m.infected && all.length && all.every((d) => d.notice && !d.eicar)) infectedWithNotice++;
    // Queue mode: the gateway's Received line comes first, the rest must be the sent bytes.
    const altered = !m.infected && all.some((d) => (opts.queue ? d.bodySha256 : d.sha256) !== m.sha256);
    if (altered) cleanAltered++;
    const retried = m.attempts.some((a) => a.outcome === '4xx' || a.outcome === 'conn');
    if (retried) {
      tempfailed.total++;
      if (verdict === 'delivered-once') tempfailed.deliveredOnce++;
      else if (verdict === 'pending') tempfailed.pending++;
      else if (INHERENT.includes(verdict)) tempfailed.inherent++;
      else tempfailed.other++;
    }
    const odd = verdict === 'delivered-once' && attribution[0]!.outcome !== '250';
    perMessage.push({ id: m.id, verdict, deliveries: all.length, infected: m.infected, infectedDelivered: infDelivered, altered, retried, attribution: attributionAll, odd });
  }
  const violations = perMessage.filter((t) => VIOLATIONS.includes(t.verdict) || t.infectedDelivered || t.altered);
  return {
    messages: messages.length,
    counts,
    infectedSent: messages.filter((m) => m.infected).length,
    infectedDelivered,
    infectedWithNotice,
    cleanAltered,
    strayDeliveries,
    attempts,
    attemptOutcomes,
    tempfailed,
    perMessage,
    violations,
  };
}
