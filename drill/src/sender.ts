/**
 * The drill's SMTP client, behaving like an MTA's queue: every message is sent until it gets a
 * final answer. `250` = delivered, done. `5xx` = refused, done (bounced). `4xx` or a connection
 * failure = the sender still holds the message: it is retried later, the same bytes (same
 * Message-ID and X-Drill-Id), with a growing delay, up to a number of attempts and an age; after
 * that it is reported as pending. Every attempt is recorded (its reply, or the stage at which the
 * connection was lost) for the tally.
 */
import { createHash } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import { SmtpConnection, SmtpError, type SmtpStage } from '@mailwarden/testkit';

export type AttemptOutcome = '250' | '4xx' | '5xx' | 'conn';

export interface AttemptRecord {
  n: number;
  /** Epoch ms. */
  startMs: number;
  endMs: number;
  outcome: AttemptOutcome;
  /** Where the attempt ended: `connect` (no connection), `greeting`, `mail`, `rcpt`, `data`, `body`, `final` (after the final dot). */
  stage: SmtpStage | 'connect';
  code?: number;
  /** The reply text, or the connection error. */
  reply: string;
}

export interface DrillMessage {
  i: number;
  id: string;
  messageId: string;
  infected: boolean;
  sha256: string;
  size: number;
  attempts: AttemptRecord[];
  /** `accepted` (250), `refused` (5xx), `pending` (retries exhausted: the sender still holds it). */
  state: 'queued' | 'accepted' | 'refused' | 'pending';
}

export interface RetryPolicy {
  maxAttempts: number;
  /** No new attempt starts this long after the first one. */
  maxAgeMs: number;
  /** Delay before attempt n+1 is delays[n-1] (the last one repeats), ±25 % jitter. */
  delaysMs: number[];
}

export interface SendOptions {
  host: string;
  port: number;
  concurrency: number;
  count: number;
  from: string;
  to: string;
  build: (i: number) => { id: string; data: Buffer; infected: boolean };
  retry: RetryPolicy;
  /** Client-side deadline for each reply (longer than the gateway's SCAN_TIMEOUT_MS). */
  replyTimeoutMs: number;
  random: () => number;
}

export class DrillSender {
  readonly messages: DrillMessage[] = [];
  private next = 0;
  private inFlight = 0;
  private readonly retries: { msg: DrillMessage; data: Buffer; dueAt: number }[] = [];

  constructor(private readonly o: SendOptions) {}

  /** Every message has had its first attempt started. */
  get allStarted(): boolean {
    return this.next >= this.o.count;
  }

  get started(): number {
    return this.next;
  }

  progress(): { started: number; accepted: number; refused: number; pending: number; waitingRetry: number; attempts: number } {
    let accepted = 0;
    let refused = 0;
    let pending = 0;
    let attempts = 0;
    for (const m of this.messages) {
      attempts += m.attempts.length;
      if (m.state === 'accepted') accepted++;
      else if (m.state === 'refused') refused++;
      else if (m.state === 'pending') pending++;
    }
    return { started: this.next, accepted, refused, pending, waitingRetry: this.retries.length, attempts };
  }

  async run(): Promise<void> {
    await Promise.all(Array.from({ length: this.o.concurrency }, () => this.worker()));
  }

  private take(): { msg: DrillMessage; data: Buffer } | undefined {
    const now = Date.now();
    let best = -1;
    for (let k = 0; k < this.retries.length; k++) {
      if (this.retries[k]!.dueAt <= now && (best < 0 || this.retries[k]!.dueAt < this.retries[best]!.dueAt)) best = k;
    }
    if (best >= 0) return this.retries.splice(best, 1)[0];
    if (this.next >= this.o.count) return undefined;
    const i = this.next++;
    const built = this.o.build(i);
    const text = built.data.toString('latin1');
    const msg: DrillMessage = {
      i,
      id: built.id,
      messageId: /^Message-ID:\s*(\S+)/im.exec(text)?.[1] ?? '',
      infected: built.infected,
      sha256: createHash('sha256').update(built.data).digest('hex'),
      size: built.data.length,
      attempts: [],
      state: 'queued',
    };
    this.messages.push(msg);
    return { msg, data: built.data };
  }

  private async worker(): Promise<void> {
    let conn: SmtpConnection | undefined;
    for (;;) {
      const job = this.take();
      if (!job) {
        if (this.next >= this.o.count && this.retries.length === 0 && this.inFlight === 0) break;
        const soonest = Math.min(...this.retries.map((r) => r.dueAt), Date.now() + 200);
        await sleep(Math.max(10, Math.min(200, soonest - Date.now())));
        continue;
      }
      this.inFlight++;
      try {
        conn = await this.attempt(job.msg, job.data, conn);
      } finally {
        this.inFlight--;
      }
      // Like an MTA's per-host backoff: a server that refuses connections (or greets with 421)
      // is not tried again by this worker for a moment, so the queue is not burnt through.
      const last = job.msg.attempts[job.msg.attempts.length - 1]!;
      if ((last.outcome === 'conn' && last.stage === 'connect') || (last.stage === 'greeting' && last.outcome === '4xx')) {
        await sleep(500 + Math.floor(this.o.random() * 1000));
      }
    }
    await conn?.quit();
  }

  /** One attempt; returns the connection to reuse (undefined when it is gone). */
  private async attempt(msg: DrillMessage, data: Buffer, conn: SmtpConnection | undefined): Promise<SmtpConnection | undefined> {
    const rec: AttemptRecord = { n: msg.attempts.length + 1, startMs: Date.now(), endMs: 0, outcome: 'conn', stage: 'connect', reply: '' };
    msg.attempts.push(rec);
    try {
      if (!conn?.alive) {
        conn = undefined;
        conn = await SmtpConnection.open(this.o.host, this.o.port, this.o.replyTimeoutMs, 'drill.example');
      }
      const reply = await conn.send(this.o.from, [this.o.to], data);
      rec.stage = conn.stage;
      rec.code = reply.code;
      rec.reply = `${reply.code} ${reply.text}`;
      rec.outcome = reply.code >= 200 && reply.code < 300 ? '250' : reply.code >= 500 ? '5xx' : '4xx';
      // 421: the server is closing the session.
      if (reply.code === 421) {
        await conn.quit();
        conn = undefined;
      }
    } catch (err) {
      const reply = err instanceof SmtpError ? err.reply : undefined;
      if (reply) {
        rec.stage = 'greeting';
        rec.code = reply.code;
        rec.reply = `${reply.code} ${reply.text}`;
        rec.outcome = reply.code >= 500 ? '5xx' : '4xx';
      } else {
        rec.stage = conn?.stage ?? 'connect';
        rec.reply = (err as Error).message;
        rec.outcome = 'conn';
      }
      await conn?.quit();
      conn = undefined;
    }
    rec.endMs = Date.now();
    if (rec.outcome === '250') msg.state = 'accepted';
    else if (rec.outcome === '5xx') msg.state = 'refused';
    else if (msg.attempts.length >= this.o.retry.maxAttempts || rec.endMs - msg.attempts[0]!.startMs >= this.o.retry.maxAgeMs) msg.state = 'pending';
    else {
      const d = this.o.retry.delaysMs;
      const base = d[Math.min(msg.attempts.length - 1, d.length - 1)]!;
      this.retries.push({ msg, data, dueAt: rec.endMs + Math.round(base * (0.75 + 0.5 * this.o.random())) });
    }
    return conn;
  }
}
