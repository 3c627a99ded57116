import type { ActivityEvent, DetectionAction, Direction, Protocol, QuarantineActionKind, UnscannableReason } from '@mailwarden/contracts';

/** Counters over every event the MW_EVENTS stream still holds (30 days), plus what arrives live. */
export interface Stats {
  /** Time of the oldest event counted, null before the first one. */
  since: string | null;
  /** Time of the newest event counted. */
  lastEventAt: string | null;
  /** False while the history is still being replayed after a start. */
  complete: boolean;
  messages: { scanned: number; smtp: number; pop3: number; tempfailed: number };
  /** Infected attachments (parts). */
  infected: number;
  /** Parts that could not be scanned, by reason. */
  unscannable: { total: number; encrypted: number; corrupt: number; limits: number };
  /** Parts replaced by the notice (infected, or unscannable under policy `remove`). */
  removedAttachments: number;
  /** Parts whose scan failed (engine down, timeout): their message got a temporary failure. */
  errors: number;
  /** Sessions relayed encrypted under TLS `passthrough`, hence not scanned. */
  tlsUnscanned: { total: number; smtp: number; pop3: number };
  /** What administrators did in quarantine. */
  quarantine: { released: number; deleted: number; rescanned: number; downloaded: number };
}

/** One administrator action on a quarantine entry (the audit trail), as GET /api/v1/audit lists it. */
export interface AdminAction {
  id: number;
  kind: QuarantineActionKind;
  ref: string;
  time: string;
  by: string;
  client: string;
  recipients?: string[];
  detail?: string;
}

/** One finding on one part, as GET /api/v1/events lists it. */
export interface Detection {
  /** MW_EVENTS stream sequence: a stable id, increasing with time of arrival. */
  id: number;
  ref: string;
  time: string;
  protocol: Protocol;
  direction: Direction;
  sender: string;
  recipients: string[];
  subject?: string;
  file?: string;
  verdict: 'infected' | 'unscannable' | 'error';
  detail?: string;
  reason?: UnscannableReason;
  action: DetectionAction;
}

/** What the REST routes read; tests may hand in their own. */
export interface ActivityView {
  stats(): Stats;
  /** The newest `limit` detections, newest first. */
  recent(limit: number): Detection[];
  /** The newest `limit` administrator actions, newest first. */
  actions(limit: number): AdminAction[];
}

export const MAX_RECENT = 1000;

/** How many recent event identities are remembered to drop duplicates (they arrive within moments of each other). */
const DEDUPE_WINDOW = 20_000;

/**
 * What makes an event the same as another: one `scanned` per message, one finding per part.
 * Undefined when the event cannot be identified (then it is always counted).
 */
export function eventIdentity(event: ActivityEvent): string | undefined {
  if (!event.ref) return undefined;
  switch (event.kind) {
    case 'scanned':
      return `scanned:${event.ref}`;
    case 'tls-unscanned':
      return `tls:${event.ref}`;
    case 'quarantine-released':
    case 'quarantine-deleted':
    case 'quarantine-rescanned':
    case 'quarantine-downloaded':
      return `${event.kind}:${event.ref}:${event.time}`;
    default:
      return `${event.kind}:${event.ref}:${event.part ?? `file:${event.file ?? ''}:${event.detail ?? ''}`}`;
  }
}

/** In-memory fold of the event stream: counters and a bounded list of recent detections. */
export class ActivityLog implements ActivityView {
  private counters: Omit<Stats, 'since' | 'lastEventAt' | 'complete'> = {
    messages: { scanned: 0, smtp: 0, pop3: 0, tempfailed: 0 },
    infected: 0,
    unscannable: { total: 0, encrypted: 0, corrupt: 0, limits: 0 },
    removedAttachments: 0,
    errors: 0,
    tlsUnscanned: { total: 0, smtp: 0, pop3: 0 },
    quarantine: { released: 0, deleted: 0, rescanned: 0, downloaded: 0 },
  };
  private adminActions: AdminAction[] = [];
  private since: string | null = null;
  private lastEventAt: string | null = null;
  private detections: Detection[] = [];
  private lastSeq = 0;
  private readonly seen = new Set<string>();
  private readonly seenOrder: string[] = [];
  private duplicates = 0;
  /** Set by the feed once the stream's history has been replayed. */
  complete = false;

  constructor(private readonly maxRecent = MAX_RECENT) {}

  /** Sequence of the last event folded in (0 before any). */
  get sequence(): number {
    return this.lastSeq;
  }

  /** Events dropped as duplicates of one already counted. */
  get duplicatesDropped(): number {
    return this.duplicates;
  }

  /**
   * Folds one event in; `seq` is its stream sequence. An event at or below the last sequence
   * (replay after a reconnect) or a duplicate of a recent one (same message and part) is ignored.
   */
  record(event: ActivityEvent, seq: number): void {
    if (seq <= this.lastSeq) return;
    this.lastSeq = seq;
    const id = eventIdentity(event);
    if (id !== undefined) {
      if (this.seen.has(id)) {
        this.duplicates++;
        return;
      }
      this.seen.add(id);
      this.seenOrder.push(id);
      // Forget the oldest half in one go, so each event costs O(1) amortised.
      if (this.seenOrder.length >= 2 * DEDUPE_WINDOW) for (const old of this.seenOrder.splice(0, DEDUPE_WINDOW)) this.seen.delete(old);
    }
    this.since ??= event.time;
    if (!this.lastEventAt || event.time > this.lastEventAt) this.lastEventAt = event.time;
    const c = this.counters;
    switch (event.kind) {
      case 'scanned':
        c.messages.scanned++;
        c.messages[event.protocol]++;
        if (event.outcome === 'tempfail') c.messages.tempfailed++;
        return;
      case 'tls-unscanned':
        c.tlsUnscanned.total++;
        c.tlsUnscanned[event.protocol]++;
        return;
      case 'quarantine-released':
      case 'quarantine-deleted':
      case 'quarantine-rescanned':
      case 'quarantine-downloaded': {
        c.quarantine[event.kind.slice('quarantine-'.length) as keyof Stats['quarantine']]++;
        const a: AdminAction = { id: seq, kind: event.kind, ref: event.ref, time: event.time, by: event.by, client: event.client };
        if (event.recipients !== undefined) a.recipients = event.recipients;
        if (event.detail !== undefined) a.detail = event.detail;
        this.adminActions.push(a);
        if (this.adminActions.length >= 2 * this.maxRecent) this.adminActions = this.adminActions.slice(-this.maxRecent);
        return;
      }
      case 'infected':
        c.infected++;
        break;
      case 'unscannable':
        c.unscannable.total++;
        if (event.reason) c.unscannable[event.reason]++;
        break;
      case 'error':
        c.errors++;
        break;
    }
    if (event.action === 'removed') c.removedAttachments++;
    const d: Detection = {
      id: seq,
      ref: event.ref,
      time: event.time,
      protocol: event.protocol,
      direction: event.direction,
      sender: event.sender,
      recipients: event.recipients,
      verdict: event.kind,
      action: event.action,
    };
    if (event.subject !== undefined) d.subject = event.subject;
    if (event.file !== undefined) d.file = event.file;
    if (event.detail !== undefined) d.detail = event.detail;
    if (event.reason !== undefined) d.reason = event.reason;
    this.detections.push(d);
    // Trim in batches so each event costs O(1) amortised.
    if (this.detections.length >= 2 * this.maxRecent) this.detections = this.detections.slice(-this.maxRecent);
  }

  stats(): Stats {
    return { since: this.since, lastEventAt: this.lastEventAt, complete: this.complete, ...structuredClone(this.counters) };
  }

  actions(limit: number): AdminAction[] {
    const n = Math.max(0, Math.min(limit, this.maxRecent));
    return n === 0 ? [] : this.adminActions.slice(-n).reverse();
  }

  recent(limit: number): Detection[] {
    const n = Math.max(0, Math.min(limit, this.maxRecent));
    return n === 0 ? [] : this.detections.slice(-n).reverse();
  }
}
