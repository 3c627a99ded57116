/**
 * What arrived upstream (the dev mailbox's maildir), per X-Drill-Id, set against what the client
 * was told. Each delivery is attributed to the attempt that produced it: the last attempt of that
 * message that started before the file was written (attempts of one message never overlap).
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
          mtimeMs: st.mtimeMs,
          size: raw.length,
          sha256: createHash('sha256').update(raw).digest('hex'),
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

/** Targets: 0 lost, 0 duplicated (beyond the inherent lost-reply case), 0 infected delivered, every 4xx ends delivered once or pending. */
export const VIOLATIONS: Verdict[] = ['lost', 'duplicated', 'tempfail-delivered', 'refused-but-delivered'];

function attemptAt(attempts: AttemptRecord[], t: number): AttemptRecord | undefined {
  let found: AttemptRecord | undefined;
  for (const a of attempts) if (a.startMs <= t + 5) found = a;
  return found;
}

export function tally(messages: DrillMessage[], deliveries: Delivery[]): Tally {
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
    (['delivered-once', 'lost', 'duplicated', 'duplicate-after-lost-reply', 'delivered-after-lost-reply', 'tempfail-delivered', 'refused', 'refused-but-delivered', 'pending'] as Verdict[]).map((v) => [v, 0]),
  ) as Record<Verdict, number>;
  const attemptOutcomes: Record<string, number> = {};
  const perMessage: MessageTally[] = [];
  let infectedDelivered = 0;
  let infectedWithNotice = 0;
  let cleanAltered = 0;
  let attempts = 0;
  const tempfailed = { total: 0, deliveredOnce: 0, pending: 0, inherent: 0, other: 0 };
  for (const m of messages) {
    const ds = (byId.get(m.id) ?? []).sort((a, b) => a.mtimeMs - b.mtimeMs);
    attempts += m.attempts.length;
    for (const a of m.attempts) {
      const key = a.outcome === 'conn' ? `conn@${a.stage}` : `${a.code ?? a.outcome}`;
      attemptOutcomes[key] = (attemptOutcomes[key] ?? 0) + 1;
    }
    const attribution = ds.map((d) => {
      const a = attemptAt(m.attempts, d.mtimeMs);
      return { attempt: a?.n ?? 0, outcome: a?.outcome ?? '?', stage: a?.stage ?? '?' };
    });
    const lostReply = (x: { outcome: string; stage: string }) => x.outcome === 'conn' && x.stage === 'final';
    const accepted = m.state === 'accepted';
    let verdict: Verdict;
    if (attribution.some((x) => x.outcome === '4xx' || (x.outcome === 'conn' && x.stage !== 'final'))) verdict = 'tempfail-delivered';
    else if (m.state === 'refused') verdict = ds.length ? 'refused-but-delivered' : 'refused';
    else if (ds.length === 0) verdict = accepted ? 'lost' : 'pending';
    else if (ds.length === 1) verdict = accepted ? 'delivered-once' : 'delivered-after-lost-reply';
    else {
      // Two or more copies: inherent only if every copy but the last accepted one belongs to an
      // attempt whose connection was lost after the final dot, and at most one copy per attempt.
      const perAttempt = new Set(attribution.map((x) => x.attempt));
      const extras = attribution.filter((x) => x.outcome !== '250');
      const okCopies = attribution.filter((x) => x.outcome === '250').length;
      verdict = perAttempt.size === attribution.length && extras.every(lostReply) && okCopies <= 1 ? 'duplicate-after-lost-reply' : 'duplicated';
    }
    counts[verdict]++;
    const infDelivered = m.infected && ds.some((d) => d.eicar);
    if (infDelivered) infectedDelivered++;
    if (m.infected && ds.length && ds.every((d) => d.notice && !d.eicar)) infectedWithNotice++;
    const altered = !m.infected && ds.some((d) => d.sha256 !== m.sha256);
    if (altered) cleanAltered++;
    const retried = m.attempts.some((a) => a.outcome === '4xx' || a.outcome === 'conn');
    if (retried) {
      tempfailed.total++;
      if (verdict === 'delivered-once') tempfailed.deliveredOnce++;
      else if (verdict === 'pending') tempfailed.pending++;
      else if (verdict === 'duplicate-after-lost-reply' || verdict === 'delivered-after-lost-reply') tempfailed.inherent++;
      else tempfailed.other++;
    }
    const odd = verdict === 'delivered-once' && attribution[0]!.outcome !== '250';
    perMessage.push({ id: m.id, verdict, deliveries: ds.length, infected: m.infected, infectedDelivered: infDelivered, altered, retried, attribution, odd });
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
