import type { Policy } from '@mailwarden/contracts';
import type { Logger } from '@mailwarden/log';
import { metrics } from '@mailwarden/observability';
import type { StoredMessage } from '@mailwarden/pipeline';
import { withDeadline } from '@mailwarden/storage';
import { deliveredSizeKey, policyDigest, type DeliveredSizeMemory } from './delivered-size-memory.js';
import { Pop3ReplyError } from './pop3-reply.js';
import type { RetrievedMessages } from './retrieved-messages.js';
import type { UpstreamPop3Client } from './upstream-pop3-client.js';

/** More lines than any message has: `TOP n WHOLE_MESSAGE` is the whole message (RFC 1939 7), and fits a signed 32-bit parser. */
export const WHOLE_MESSAGE = 2147483647;

/** How the look-ahead fetches one message: TOP when upstream has it (RETR marks it seen on Dovecot and most servers), and its share of the budget. */
export interface LookaheadFetch {
  verb: 'TOP' | 'RETR';
  timeoutMs: number;
}

/** What the look-ahead uses of its session. */
export interface LookaheadSession {
  readonly upstream: UpstreamPop3Client;
  readonly messages: RetrievedMessages;
  readonly log: Logger;
  readonly user: string;
  policy(): Policy;
  /** The scanned copy of n (cached by the session: the client's RETR/TOP is served from it). */
  scannedMessage(n: number, fetch?: LookaheadFetch): Promise<StoredMessage>;
}

export interface SizeLookaheadOptions {
  /** Time one LIST or STAT may spend learning sizes (POP3_SIZE_LOOKAHEAD_MS); 0 = never (upstream's sizes, as before). */
  budgetMs: number;
  /** Delivered sizes remembered across sessions; none = every session scans ahead on its own. */
  memory?: DeliveredSizeMemory;
  /** Deadline of one memory call. Default 1000 ms. */
  memoryTimeoutMs?: number;
  /** Upstream's `host:port` (part of every memory key). */
  upstream: string;
}

/** Memory lookups in flight at once. */
const MEMORY_BATCH = 32;

/**
 * RFC 1939 5 asks LIST for a message's exact size, but RETR sends the scanned copy, whose size
 * differs when a part became a notice or the subject was marked. So before LIST or STAT reports
 * a size the session does not know, this learns it: first from the memory of earlier sessions
 * (keyed by the message's UIDL), then by retrieving and scanning the message now. The scanned
 * copy stays in the session, so the client's RETR is served from it without a second scan.
 *
 * Bounded: one command spends at most `budgetMs` (a scan still running then is abandoned); the
 * messages left keep upstream's size (`pop3.sizes_estimated`). A message whose look-ahead scan
 * fails keeps upstream's size too and is not tried again by LIST/STAT in this session; its RETR
 * tries again as it always did.
 */
export class SizeLookahead {
  /** Upstream's sizes by message number, as its LIST said (fixed for the session, RFC 1939 5). */
  private readonly listed = new Map<number, number>();
  /** `listed` holds every undeleted message: a whole LIST was read since the last RSET. */
  private complete = false;
  /** UIDL by message number; null when upstream has no UIDL (then nothing is remembered). */
  private uids: Map<number, string> | null | undefined;
  private verb: LookaheadFetch['verb'] | undefined;
  private readonly failed = new Set<number>();

  constructor(
    private readonly s: LookaheadSession,
    private readonly opts: SizeLookaheadOptions,
  ) {}

  get enabled(): boolean {
    return this.opts.budgetMs > 0;
  }

  /** Upstream's size of n, when a LIST told it. */
  listedSize(n: number): number | undefined {
    return this.listed.get(n);
  }

  /** Notes a line of upstream's LIST (`n size`) or the text of its `+OK n size`; returns the pair. */
  noteListLine(line: string): [number, number] | undefined {
    const m = /^(\d+) (\d+)/.exec(line);
    if (!m) return undefined;
    const pair: [number, number] = [Number(m[1]), Number(m[2])];
    this.listed.set(...pair);
    return pair;
  }

  /** A whole LIST listing was read (every undeleted message is in it). */
  noteListing(lines: readonly string[]): Array<[number, number]> {
    const pairs = lines.map((l) => this.noteListLine(l)).filter((p): p is [number, number] => !!p);
    this.complete = true;
    return pairs;
  }

  /** A line of upstream's UIDL listing as relayed to the client: saves asking for it again. */
  noteUidLine(line: string): void {
    const m = /^(\d+) ([\x21-\x7e]{1,70})$/.exec(line);
    if (!m) return;
    this.uids ??= new Map();
    this.uids?.set(Number(m[1]), m[2]!);
  }

  /** RSET: deleted messages are back, and a listing read while they were deleted lacks them. */
  reset(): void {
    this.complete = false;
  }

  /** Every undeleted message with upstream's size: from this session's listing, else a LIST now. */
  async listing(): Promise<Array<[number, number]>> {
    if (!this.complete) {
      const { lines } = await this.s.upstream.listing('LIST');
      if (!lines) return [];
      const all: string[] = [];
      for await (const line of lines) all.push(line);
      this.noteListing(all);
    }
    return [...this.listed].filter(([n]) => !this.s.messages.isDeleted(n));
  }

  /**
   * Makes the delivered size of each message of `wanted` (number → upstream's size) known, within
   * the budget: remembered, else scanned now. Throws only when the upstream leg is lost.
   */
  async learn(wanted: ReadonlyArray<readonly [number, number]>, command: string): Promise<void> {
    if (!this.enabled) return;
    const started = Date.now();
    const deadline = started + this.opts.budgetMs;
    const { messages } = this.s;
    const unknown = wanted.filter(([n]) => messages.deliveredSize(n) === undefined && !messages.isDeleted(n) && !this.failed.has(n));
    if (!unknown.length) return;
    const recalled = await this.recall(unknown, deadline);
    let scanned = 0;
    let failed = 0;
    const todo = unknown.filter(([n]) => messages.deliveredSize(n) === undefined);
    if (todo.length && Date.now() < deadline) {
      const verb = await this.peekVerb();
      for (const [n] of todo) {
        const timeoutMs = deadline - Date.now();
        if (timeoutMs <= 0) break;
        try {
          await this.s.scannedMessage(n, { verb, timeoutMs });
          scanned++;
        } catch (err) {
          if (!(err instanceof Pop3ReplyError) || err.fatal) throw err;
          // Upstream's size for it; not tried again by LIST/STAT in this session (RETR tries again).
          this.failed.add(n);
          failed++;
        }
      }
    }
    const estimated = unknown.length - recalled - scanned;
    metrics.pop3Sizes.inc({ source: 'memory' }, recalled);
    metrics.pop3Sizes.inc({ source: 'scan' }, scanned);
    metrics.pop3Sizes.inc({ source: 'upstream' }, estimated);
    const fields = { command, unknown: unknown.length, recalled, scanned, failed, estimated, ms: Date.now() - started };
    if (estimated) {
      this.s.log.warn(
        { event: 'pop3.sizes_estimated', ...fields, budgetMs: this.opts.budgetMs },
        `${command}: ${estimated} message(s) reported with upstream's size (look-ahead budget spent or scan failed); RETR may send another size`,
      );
    } else {
      this.s.log.info({ event: 'pop3.sizes_learned', ...fields }, `${command}: delivered sizes of ${unknown.length} message(s) learned`);
    }
  }

  /** After a scan: remembers the delivered size for later sessions. The write is not waited for, and its failure costs a later scan only. */
  async remember(n: number, deliveredSize: number): Promise<void> {
    const memory = this.opts.memory;
    if (!memory || !this.enabled) return;
    const uid = (await this.uidMap())?.get(n);
    const upstreamSize = this.listed.get(n) ?? (await this.listOne(n));
    if (uid === undefined || upstreamSize === undefined) return;
    const key = this.key(uid, upstreamSize);
    void withDeadline(memory.put(key, deliveredSize), this.memoryTimeoutMs, 'size memory write').catch((err: unknown) =>
      this.s.log.warn({ event: 'pop3.size_memory_failed', op: 'put', msg: n, err: (err as Error).message }, 'delivered size not remembered'),
    );
  }

  /** Looks the sizes of `todo` up in the memory; resolves with how many were found. A failure ends the lookups of this command. */
  private async recall(todo: ReadonlyArray<readonly [number, number]>, deadline: number): Promise<number> {
    const memory = this.opts.memory;
    if (!memory) return 0;
    const uids = await this.uidMap();
    if (!uids) return 0;
    const digest = policyDigest(this.s.policy());
    let found = 0;
    for (let i = 0; i < todo.length; i += MEMORY_BATCH) {
      const timeoutMs = Math.min(this.memoryTimeoutMs, deadline - Date.now());
      if (timeoutMs <= 0) break;
      const outcomes = await Promise.all(
        todo.slice(i, i + MEMORY_BATCH).map(async ([n, upstreamSize]) => {
          const uid = uids.get(n);
          if (uid === undefined) return false;
          const size = await withDeadline(memory.get(this.key(uid, upstreamSize, digest)), timeoutMs, 'size memory read');
          if (size === undefined) return false;
          this.s.messages.recall(n, upstreamSize, size);
          return true;
        }).map((p) => p.catch((err: unknown) => err as Error)),
      );
      found += outcomes.filter((o) => o === true).length;
      const failure = outcomes.find((o): o is Error => o instanceof Error);
      if (failure) {
        this.s.log.warn({ event: 'pop3.size_memory_failed', op: 'get', err: failure.message }, 'delivered sizes could not be read: scanning ahead instead');
        break;
      }
    }
    return found;
  }

  private key(uid: string, upstreamSize: number, digest = policyDigest(this.s.policy())): string {
    return deliveredSizeKey({ upstream: this.opts.upstream, user: this.s.user, uid, upstreamSize, policyDigest: digest });
  }

  private get memoryTimeoutMs(): number {
    return this.opts.memoryTimeoutMs ?? 1000;
  }

  /** UIDL (RFC 1939 7) once per session, unless the client's own UIDL already showed it. */
  private async uidMap(): Promise<Map<number, string> | undefined> {
    if (this.uids === undefined) {
      const { lines } = await this.s.upstream.listing('UIDL');
      this.uids = lines ? new Map() : null;
      if (lines) for await (const line of lines) this.noteUidLine(line);
    }
    return this.uids ?? undefined;
  }

  /** `LIST n` for a message retrieved before any LIST. */
  private async listOne(n: number): Promise<number | undefined> {
    const reply = await this.s.upstream.command(`LIST ${n}`);
    return reply.ok ? this.noteListLine(reply.text)?.[1] : undefined;
  }

  /** TOP when upstream's CAPA lists it (asked once if the client never did), else RETR. */
  private async peekVerb(): Promise<LookaheadFetch['verb']> {
    if (!this.verb) {
      if (!this.s.upstream.capa) await this.s.upstream.capabilities();
      this.verb = this.s.upstream.has('TOP') ? 'TOP' : 'RETR';
      if (this.verb === 'RETR') this.s.log.info({ event: 'pop3.lookahead_retr' }, 'upstream lists no TOP: the size look-ahead uses RETR (upstream may mark those messages seen)');
    }
    return this.verb;
  }
}
