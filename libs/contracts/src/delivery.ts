import { Type, type Static } from '@sinclair/typebox';
import { MessageRef } from './messages.js';

/**
 * Where a queued message goes: the upstream of the listener it came in on (`inbound`:
 * SMTP_UPSTREAM, `outbound`: SMTP_OUTBOUND_UPSTREAM), or `bounce` for a delivery status
 * notification (QUEUE_BOUNCE_RELAY). The addresses stay in the deliverer's configuration,
 * never on the bus.
 */
export const DeliveryRoute = Type.Union([Type.Literal('inbound'), Type.Literal('outbound'), Type.Literal('bounce')]);
export type DeliveryRoute = Static<typeof DeliveryRoute>;

/** Queue mode: one per finished message on `mw.delivery.<ref>` (published by the reassembler, or by the config service for retry-now). */
export const DeliveryJob = Type.Object({
  ref: MessageRef,
  route: DeliveryRoute,
  /** Envelope sender; empty = the null sender (a DSN), which never gets a DSN itself. */
  mailFrom: Type.String(),
  rcptTo: Type.Array(Type.String(), { minItems: 1 }),
  /** The object to deliver: raw.eml when nothing was removed, else rebuilt.eml. */
  key: Type.String(),
  size: Type.Integer({ minimum: 0 }),
  /** Every object of the message, removed once it is finished. */
  keys: Type.Array(Type.String()),
  /** When the gateway answered 250: the lifetime (QUEUE_LIFETIME_MS) runs from here. */
  receivedAt: Type.String(),
  /** A copy published by retry-now: only the copy the state names is live, any other is dropped. */
  copy: Type.Optional(Type.String()),
});
export type DeliveryJob = Static<typeof DeliveryJob>;

/** One recipient's outcome in one attempt: upstream's reply, or the connection failure. */
export const RecipientOutcome = Type.Object({
  recipient: Type.String(),
  /** 2xx done, 4xx deferred, 5xx failed; 0 = no reply (connection failure, deadline). */
  code: Type.Integer(),
  reply: Type.String(),
});
export type RecipientOutcome = Static<typeof RecipientOutcome>;

export const DeliveryAttempt = Type.Object({
  at: Type.String(),
  upstream: Type.String(),
  outcomes: Type.Array(RecipientOutcome),
});
export type DeliveryAttempt = Static<typeof DeliveryAttempt>;

/** KV `mw-delivery`, key `q.<ref>`: a message in the queue. Written by the deliverer (and the config service: delete). */
export const DeliveryState = Type.Object({
  job: DeliveryJob,
  /** Recipients upstream accepted (never sent again). */
  delivered: Type.Array(Type.String()),
  /** Recipients given up on (5xx, or lifetime exceeded), with the reply the DSN quotes. */
  failed: Type.Array(RecipientOutcome),
  /** The last attempts, newest last (at most 20 kept). */
  attempts: Type.Array(DeliveryAttempt),
  attemptCount: Type.Integer({ minimum: 0 }),
  nextAttemptAt: Type.Optional(Type.String()),
  /** A deliverer is working on it until this time (ms since the epoch); another one waits. */
  leaseUntil: Type.Optional(Type.Integer()),
  /** Which deliverer holds the lease (`host/pid`), for operators. */
  leaseBy: Type.Optional(Type.String()),
  /** The live copy of the job (retry-now); absent = the original one. */
  copy: Type.Optional(Type.String()),
  /**
   * Written just before DATA and cleared with the attempt's outcome: found by the next deliverer,
   * it means the last one died while upstream may have taken the message (RFC 5321 6.1).
   */
  sending: Type.Optional(Type.Object({ attempt: Type.Integer(), at: Type.String() })),
  /** Attempts cut off that way: each a possible duplicate (the one case SMTP cannot close). */
  interrupted: Type.Optional(Type.Integer({ minimum: 0 })),
});
export type DeliveryState = Static<typeof DeliveryState>;

/** KV `mw-delivery`, key `done.<ref>`: written before the delivery job is acked; a job that finds it is dropped. */
export const DeliveryRecord = Type.Object({
  ref: MessageRef,
  finishedAt: Type.String(),
  outcome: Type.Union([Type.Literal('delivered'), Type.Literal('bounced'), Type.Literal('partial'), Type.Literal('deleted')]),
  delivered: Type.Array(Type.String()),
  failed: Type.Array(RecipientOutcome),
  attemptCount: Type.Integer({ minimum: 0 }),
  /** Reference of the DSN sent to the sender, if any. */
  dsnRef: Type.Optional(Type.String()),
  /** Attempts cut off between DATA and the record of upstream's reply: possible duplicates. */
  interrupted: Type.Optional(Type.Integer({ minimum: 0 })),
});
export type DeliveryRecord = Static<typeof DeliveryRecord>;
