import { randomBytes } from 'node:crypto';
import { Subjects, type DeliveryRecord, type DeliveryRoute, type DeliveryState } from '@mailwarden/contracts';
import type { DeliveryRecords } from '@mailwarden/bus';
import type { ObjectStore } from '@mailwarden/storage';

export class QueueEntryNotFoundError extends Error {
  override name = 'QueueEntryNotFoundError';
}

/** The message is being delivered right now: retry-now or delete would race the deliverer. */
export class QueueEntryBusyError extends Error {
  override name = 'QueueEntryBusyError';
}

export interface QueuedMessage {
  ref: string;
  route: DeliveryRoute;
  from: string;
  to: string[];
  size: number;
  receivedAt: string;
  attempts: number;
  delivered: string[];
  failed: string[];
  nextAttemptAt?: string;
  lastAttemptAt?: string;
  lastError?: string;
  deliveringBy?: string;
  interrupted?: number;
}

export interface UpstreamSummary {
  route: DeliveryRoute;
  /** host:port of the last attempt through this route, if any. */
  upstream?: string;
  queued: number;
  /** Queued messages whose last attempt did not deliver to everyone. */
  failing: number;
  lastError?: string;
}

export interface QueueSummary {
  count: number;
  oldest: string | null;
  upstreams: UpstreamSummary[];
  messages: QueuedMessage[];
}

export interface DeliveryQueueDeps {
  records: DeliveryRecords;
  store: ObjectStore;
  /** Publishes a delivery job (retry-now); JetStream's ack when it resolves. */
  publish: (subject: string, data: string, msgID: string) => Promise<unknown>;
}

/** The last failing reply of a state's last attempt. */
function lastError(s: DeliveryState): string | undefined {
  const last = s.attempts[s.attempts.length - 1];
  return last?.outcomes.find((o) => o.code < 200 || o.code >= 300)?.reply;
}

function view(s: DeliveryState): QueuedMessage {
  const last = s.attempts[s.attempts.length - 1];
  const err = lastError(s);
  return {
    ref: s.job.ref,
    route: s.job.route,
    from: s.job.mailFrom,
    to: s.job.rcptTo,
    size: s.job.size,
    receivedAt: s.job.receivedAt,
    attempts: s.attemptCount,
    delivered: s.delivered,
    failed: s.failed.map((f) => f.recipient),
    ...(s.nextAttemptAt ? { nextAttemptAt: s.nextAttemptAt } : {}),
    ...(last ? { lastAttemptAt: last.at } : {}),
    ...(err ? { lastError: err } : {}),
    ...(s.leaseBy && (s.leaseUntil ?? 0) > Date.now() ? { deliveringBy: s.leaseBy } : {}),
    ...(s.interrupted ? { interrupted: s.interrupted } : {}),
  };
}

/**
 * Queue mode, the administrator's side: the delivery queue as the `mw-delivery` bucket holds it
 * (what the deliverers write), retry-now and delete. The config service never delivers itself.
 */
export class DeliveryQueue {
  constructor(private readonly deps: DeliveryQueueDeps) {}

  async summary(limit = 100): Promise<QueueSummary> {
    const states = (await this.deps.records.queued()).sort((a, b) => a.job.receivedAt.localeCompare(b.job.receivedAt));
    const byRoute = new Map<DeliveryRoute, UpstreamSummary & { lastAt?: string }>();
    for (const s of states) {
      const u = byRoute.get(s.job.route) ?? { route: s.job.route, queued: 0, failing: 0 };
      u.queued++;
      const last = s.attempts[s.attempts.length - 1];
      if (last) {
        if (!u.lastAt || last.at > u.lastAt) {
          u.lastAt = last.at;
          u.upstream = last.upstream;
        }
        const err = lastError(s);
        if (err) {
          u.failing++;
          u.lastError = err;
        }
      }
      byRoute.set(s.job.route, u);
    }
    return {
      count: states.length,
      oldest: states[0]?.job.receivedAt ?? null,
      upstreams: [...byRoute.values()].map(({ lastAt: _lastAt, ...u }) => u),
      messages: states.slice(0, limit).map(view),
    };
  }

  /** A queued message with every attempt kept, or the record of a finished one. */
  async get(ref: string): Promise<{ status: 'queued'; message: QueuedMessage; state: DeliveryState } | { status: 'finished'; record: DeliveryRecord }> {
    const current = await this.deps.records.load(ref);
    if (current) return { status: 'queued', message: view(current.state), state: current.state };
    const record = await this.deps.records.done(ref);
    if (record) return { status: 'finished', record };
    throw new QueueEntryNotFoundError(`no queued or finished message ${ref}`);
  }

  /**
   * Retry now: a new copy of the job, which the deliverers take at once; the state names it as the
   * live copy first, so the old one (waiting out its backoff) is dropped when it comes back.
   */
  async retry(ref: string): Promise<QueuedMessage> {
    const current = await this.queued(ref);
    const copy = randomBytes(6).toString('hex');
    const previous = current.state.copy;
    const { nextAttemptAt: _next, ...rest } = current.state;
    const state: DeliveryState = { ...rest, copy };
    const revision = await this.deps.records.update(state, current.revision);
    try {
      await this.deps.publish(Subjects.delivery(ref), JSON.stringify({ ...state.job, copy }), `delivery-${ref}-${copy}`);
    } catch (err) {
      // Without the new copy the old one must stay live.
      const { copy: _ours, ...rest } = state;
      const back: DeliveryState = previous ? { ...rest, copy: previous } : rest;
      await this.deps.records.update(back, revision).catch(() => undefined);
      throw err;
    }
    return view(state);
  }

  /** Drops the message: its record says `deleted` (a job still in the stream is dropped), its objects go. */
  async delete(ref: string): Promise<void> {
    const { state } = await this.queued(ref);
    await this.deps.records.finish({ ref, finishedAt: new Date().toISOString(), outcome: 'deleted', delivered: state.delivered, failed: state.failed, attemptCount: state.attemptCount });
    await this.deps.store.remove(state.job.keys).catch(() => undefined);
  }

  private async queued(ref: string) {
    const current = await this.deps.records.load(ref);
    if (!current) throw new QueueEntryNotFoundError(`no queued message ${ref}`);
    if (current.state.leaseUntil && current.state.leaseUntil > Date.now()) throw new QueueEntryBusyError(`message ${ref} is being delivered right now; try again in a moment`);
    return current;
  }
}
