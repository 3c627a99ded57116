import { Readable } from 'node:stream';
import { ObjectKeys, QuarantineEntry, decode, type QuarantineActionEvent, type QuarantineActionKind } from '@mailwarden/contracts';
import type { Delivery, DeliveryReport } from '@mailwarden/smtp-client';
import type { ObjectStore, StoredObject } from '@mailwarden/storage';
import type { Logger } from '@mailwarden/log';
import { metrics } from '@mailwarden/observability';
import type { Rescan } from './quarantine-rescan.js';

const DAY_MS = 86_400_000;

export interface QuarantineFilter {
  /** ISO 8601 bounds on the time it was quarantined: from inclusive, to exclusive. */
  from?: string;
  to?: string;
  /** Substring, case-insensitive. */
  recipient?: string;
  sender?: string;
  /** A removed part's reason: infected, encrypted, corrupt or limits. */
  reason?: string;
  /** Substring of a removed part's signature, case-insensitive. */
  signature?: string;
  /** Prefix of the quarantine reference. */
  ref?: string;
  offset: number;
  limit: number;
}

export interface QuarantinePage {
  entries: QuarantineEntry[];
  total: number;
  /** Offset of the next page; absent on the last one. */
  nextOffset?: number;
}

export interface SweepReport {
  deleted: string[];
  entries: number;
  bytes: number;
}

/** Who asked: the token identity and the client address. */
export interface Actor {
  by: string;
  client: string;
}

export interface QuarantineDeps {
  store: ObjectStore;
  /** Whole-message delivery to the configured upstream (deliverMessage bound to SMTP_UPSTREAM). */
  deliver: (delivery: Omit<Delivery, 'helloName'>) => Promise<DeliveryReport>;
  rescan: Rescan;
  /** Publishes an audit event on MW_EVENTS. */
  audit: (event: QuarantineActionEvent) => Promise<void>;
  /** The policy's quarantine.retentionDays now. */
  retentionDays: () => number;
  log: Logger;
  /** Originals larger than this are not read into memory for a rescan. Default 64 MiB. */
  maxRescanBytes?: number;
}

export class QuarantineNotFoundError extends Error {
  override name = 'QuarantineNotFoundError';
}

/**
 * The quarantine as the config service sees it: entries under `quarantine/<ref>/` (raw.eml +
 * meta.json, written by the reassembler), listed, filtered, released, rescanned, deleted and swept.
 * Metadata is cached by key and modification time, so a listing reads each meta.json once.
 */
export class Quarantine {
  private readonly cache = new Map<string, { modified: number; entry: QuarantineEntry }>();

  constructor(private readonly deps: QuarantineDeps) {}

  /** Every entry, newest first (from one listing of the prefix). */
  private async all(): Promise<{ entries: QuarantineEntry[]; objects: StoredObject[] }> {
    const objects = await this.deps.store.list(ObjectKeys.quarantinePrefix);
    const metas = objects.filter((o) => o.key.endsWith('/meta.json'));
    const entries: QuarantineEntry[] = [];
    const live = new Set<string>();
    for (let i = 0; i < metas.length; i += 16) {
      const batch = await Promise.all(metas.slice(i, i + 16).map((o) => this.readMeta(o).catch(() => undefined)));
      for (const e of batch) if (e) entries.push(e);
    }
    for (const o of metas) live.add(o.key);
    for (const k of this.cache.keys()) if (!live.has(k)) this.cache.delete(k);
    entries.sort((a, b) => (a.time < b.time ? 1 : a.time > b.time ? -1 : a.ref.localeCompare(b.ref)));
    this.gauge(objects);
    return { entries, objects };
  }

  private gauge(objects: StoredObject[]): void {
    metrics.quarantineObjects.set(objects.filter((o) => o.key.endsWith('/meta.json')).length);
    metrics.quarantineBytes.set(objects.reduce((n, o) => n + o.size, 0));
  }

  private async readMeta(o: StoredObject): Promise<QuarantineEntry> {
    const modified = o.lastModified.getTime();
    const hit = this.cache.get(o.key);
    if (hit && hit.modified === modified) return hit.entry;
    const entry = decode(QuarantineEntry, await readAll(await this.deps.store.get(o.key)));
    this.cache.set(o.key, { modified, entry });
    return entry;
  }

  async list(filter: QuarantineFilter): Promise<QuarantinePage> {
    const { entries } = await this.all();
    const has = (value: string, needle?: string) => needle === undefined || value.toLowerCase().includes(needle.toLowerCase());
    const matched = entries.filter(
      (e) =>
        (filter.from === undefined || Date.parse(e.time) >= Date.parse(filter.from)) &&
        (filter.to === undefined || Date.parse(e.time) < Date.parse(filter.to)) &&
        (filter.recipient === undefined || e.recipients.some((r) => has(r, filter.recipient))) &&
        has(e.sender, filter.sender) &&
        (filter.reason === undefined || e.parts.some((p) => (p.verdict === 'infected' ? 'infected' : p.reason) === filter.reason)) &&
        (filter.signature === undefined || e.parts.some((p) => has(p.signature ?? '', filter.signature))) &&
        (filter.ref === undefined || e.ref.startsWith(filter.ref.toLowerCase())),
    );
    const page = matched.slice(filter.offset, filter.offset + filter.limit);
    const next = filter.offset + page.length;
    return { entries: page, total: matched.length, ...(next < matched.length ? { nextOffset: next } : {}) };
  }

  async get(ref: string): Promise<QuarantineEntry> {
    const key = ObjectKeys.quarantineMeta(ref);
    try {
      return decode(QuarantineEntry, await readAll(await this.deps.store.get(key)));
    } catch (err) {
      if (isMissing(err)) throw new QuarantineNotFoundError(`no quarantine entry ${ref}`);
      throw err;
    }
  }

  /** The original as received; an audit event records the download. */
  async original(ref: string, actor: Actor): Promise<Readable> {
    await this.get(ref);
    const body = await this.deps.store.get(ObjectKeys.quarantineRaw(ref));
    await this.audit('quarantine-downloaded', ref, actor);
    return body;
  }

  /**
   * Delivers the original to its recipients (or `recipients`) through the configured upstream,
   * unchanged or with an `X-Mailwarden-Released` header first, and records the release.
   */
  async release(ref: string, opts: { recipients?: string[]; addHeader?: boolean }, actor: Actor): Promise<QuarantineEntry> {
    const entry = await this.get(ref);
    const to = opts.recipients?.length ? opts.recipients : entry.recipients;
    const at = new Date().toISOString();
    const raw = await this.deps.store.get(ObjectKeys.quarantineRaw(ref));
    const message = opts.addHeader ? withHeader(`X-Mailwarden-Released: ${actor.by} ${at} (${ref})`, raw) : raw;
    let report: DeliveryReport;
    try {
      report = await this.deps.deliver({ from: entry.sender, to, message });
    } catch (err) {
      metrics.quarantineReleases.inc({ outcome: 'failed' });
      throw err;
    }
    metrics.quarantineReleases.inc({ outcome: 'delivered' });
    const updated: QuarantineEntry = {
      ...entry,
      releases: [...entry.releases, { by: `${actor.by} (${actor.client})`, at, recipients: report.accepted, headerAdded: opts.addHeader === true, reply: report.reply }],
    };
    await this.writeMeta(updated);
    this.deps.log.info({ event: 'quarantine.released', quarantineRef: ref, by: actor.by, client: actor.client, recipients: report.accepted, reply: report.reply }, `quarantine entry ${ref} released`);
    await this.audit('quarantine-released', ref, actor, { recipients: report.accepted, detail: report.reply });
    return updated;
  }

  async rescan(ref: string, actor: Actor): Promise<QuarantineEntry> {
    const entry = await this.get(ref);
    const max = this.deps.maxRescanBytes ?? 64 * 1024 * 1024;
    if (entry.size > max) throw new RangeError(`the original is ${entry.size} bytes; rescans read it into memory and stop at ${max}`);
    const original = await readAll(await this.deps.store.get(ObjectKeys.quarantineRaw(ref)));
    const report = await this.deps.rescan(original);
    const updated: QuarantineEntry = { ...entry, lastRescan: { by: `${actor.by} (${actor.client})`, at: new Date().toISOString(), ...report } };
    await this.writeMeta(updated);
    this.deps.log.info({ event: 'quarantine.rescanned', quarantineRef: ref, verdict: report.verdict, findings: report.findings.length }, `quarantine entry ${ref} rescanned: ${report.verdict}`);
    await this.audit('quarantine-rescanned', ref, actor, { detail: report.verdict });
    return updated;
  }

  async delete(ref: string, actor: Actor): Promise<void> {
    await this.get(ref);
    await this.removeEntry(ref);
    metrics.quarantineDeletions.inc({ cause: 'admin' });
    this.deps.log.info({ event: 'quarantine.deleted', quarantineRef: ref, by: actor.by, client: actor.client }, `quarantine entry ${ref} deleted`);
    await this.audit('quarantine-deleted', ref, actor);
  }

  /**
   * Deletes every entry older than the retention (all of them with retention 0), and whatever a
   * crashed reassembler left without metadata once it is as old; updates the size gauges.
   */
  async sweep(now = Date.now()): Promise<SweepReport> {
    const retentionMs = this.deps.retentionDays() * DAY_MS;
    const { entries, objects } = await this.all();
    const byRef = new Map<string, StoredObject[]>();
    for (const o of objects) {
      const ref = o.key.slice(ObjectKeys.quarantinePrefix.length).split('/')[0]!;
      byRef.set(ref, [...(byRef.get(ref) ?? []), o]);
    }
    const times = new Map(entries.map((e) => [e.ref, Date.parse(e.time)]));
    const deleted: string[] = [];
    for (const [ref, objs] of byRef) {
      const since = times.get(ref) ?? Math.max(...objs.map((o) => o.lastModified.getTime()));
      if (now - since < retentionMs) continue;
      await this.deps.store.remove(objs.map((o) => o.key));
      deleted.push(ref);
    }
    if (deleted.length) {
      metrics.quarantineDeletions.inc({ cause: 'expired' }, deleted.length);
      this.deps.log.info({ event: 'quarantine.expired', refs: deleted.slice(0, 100), count: deleted.length }, `${deleted.length} quarantine entr${deleted.length === 1 ? 'y' : 'ies'} expired`);
    }
    const kept = objects.filter((o) => !deleted.some((r) => o.key.startsWith(`${ObjectKeys.quarantinePrefix}${r}/`)));
    this.gauge(kept);
    return { deleted, entries: kept.filter((o) => o.key.endsWith('/meta.json')).length, bytes: kept.reduce((n, o) => n + o.size, 0) };
  }

  /** Runs the sweep every `intervalMs` until `signal` aborts; a failed sweep is logged and tried again next time. */
  runSweeps(intervalMs: number, signal: AbortSignal): void {
    const tick = async () => {
      try {
        await this.sweep();
      } catch (err) {
        this.deps.log.warn({ event: 'quarantine.sweep_failed', err: (err as Error).message }, 'quarantine sweep failed');
      }
      if (!signal.aborted) setTimeout(() => void tick(), intervalMs).unref();
    };
    void tick();
  }

  private async removeEntry(ref: string): Promise<void> {
    await this.deps.store.remove([ObjectKeys.quarantineMeta(ref), ObjectKeys.quarantineRaw(ref)]);
    this.cache.delete(ObjectKeys.quarantineMeta(ref));
  }

  private async writeMeta(entry: QuarantineEntry): Promise<void> {
    const body = Buffer.from(JSON.stringify(entry, null, 2));
    await this.deps.store.put(ObjectKeys.quarantineMeta(entry.ref), Readable.from([body]));
  }

  private async audit(kind: QuarantineActionKind, ref: string, actor: Actor, extra: { recipients?: string[]; detail?: string } = {}): Promise<void> {
    const event: QuarantineActionEvent = { kind, ref, time: new Date().toISOString(), by: actor.by, client: actor.client, ...extra };
    try {
      await this.deps.audit(event);
    } catch (err) {
      // The action is done; a lost audit event is logged rather than reported as a failed action.
      this.deps.log.error({ event: 'quarantine.audit_failed', kind, quarantineRef: ref, err: (err as Error).message }, 'could not publish the audit event');
    }
  }
}

async function readAll(stream: Readable): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const c of stream) chunks.push(c as Buffer);
  return Buffer.concat(chunks);
}

function isMissing(err: unknown): boolean {
  for (let e = err as { code?: string; cause?: unknown; message?: string } | undefined; e; e = e.cause as typeof e) {
    if (e.code === 'NotFound' || e.code === 'NoSuchKey' || /not ?found|NoSuchKey|does not exist/i.test(e.message ?? '')) return true;
  }
  return false;
}

/** `header` (one line) and CRLF, then the original. */
function withHeader(header: string, original: Readable): Readable {
  const out = Readable.from(
    (async function* () {
      yield Buffer.from(`${header}\r\n`, 'latin1');
      yield* original;
    })(),
    { objectMode: false },
  );
  out.once('close', () => original.destroy());
  return out;
}
