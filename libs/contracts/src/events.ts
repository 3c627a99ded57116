import { Type, type Static } from '@sinclair/typebox';
import { Direction, MessageRef, Protocol, UnscannableReason } from './messages.js';

/**
 * Activity events, published on `mw.event.<kind>` (Subjects.event) and kept in the MW_EVENTS
 * stream for 30 days. The config service rebuilds its counters and recent detections from them.
 * Every payload carries its `kind`, equal to the last subject token.
 *
 * Publish with JetStream and a msgID (`event-<ref>-scanned`, `event-<ref>-<part>`,
 * `event-<ref>-tls`): a message finalised twice (a redelivered verdict, two reassemblers) must
 * not be counted twice. The config service also drops duplicates by the same keys.
 */

/** What every event about one message carries. */
const MessageFields = {
  ref: MessageRef,
  /** ISO 8601 time the event happened. */
  time: Type.String(),
  protocol: Protocol,
  direction: Direction,
  /** The envelope sender (MAIL FROM), empty for a null sender. */
  sender: Type.String(),
  /** The envelope recipients (RCPT TO). */
  recipients: Type.Array(Type.String()),
  /** The decoded Subject header, when the message had one. */
  subject: Type.Optional(Type.String()),
};

/** A message went through the pipeline (whatever the verdicts). */
export const ScannedEvent = Type.Object({
  kind: Type.Literal('scanned'),
  ...MessageFields,
  /** Number of parts in the part map. */
  parts: Type.Integer({ minimum: 0 }),
  outcome: Type.Union([Type.Literal('deliver'), Type.Literal('tempfail'), Type.Literal('reject')]),
});
export type ScannedEvent = Static<typeof ScannedEvent>;

/** What became of the part: removed (replaced by the notice), delivered as it was, or the message was refused for now. */
export const DetectionAction = Type.Union([Type.Literal('removed'), Type.Literal('delivered'), Type.Literal('tempfail')]);
export type DetectionAction = Static<typeof DetectionAction>;

const DetectionFields = {
  ...MessageFields,
  /** The part's path in the part map (e.g. "1.2"): with `ref`, identifies the finding, so a duplicate can be recognised. */
  part: Type.Optional(Type.String()),
  /** The attachment's file name, when it had one. */
  file: Type.Optional(Type.String()),
  /** Signature name (infected), clamd's heuristic (unscannable) or the error text (error). */
  detail: Type.Optional(Type.String()),
  action: DetectionAction,
};

/** One part of a message was infected. */
export const InfectedEvent = Type.Object({
  kind: Type.Literal('infected'),
  ...DetectionFields,
  verdict: Type.Literal('infected'),
  reason: Type.Optional(UnscannableReason),
});
export type InfectedEvent = Static<typeof InfectedEvent>;

/** One part of a message could not be scanned (encrypted, corrupt, over the engine's limits). */
export const UnscannableEvent = Type.Object({
  kind: Type.Literal('unscannable'),
  ...DetectionFields,
  verdict: Type.Literal('unscannable'),
  reason: Type.Optional(UnscannableReason),
});
export type UnscannableEvent = Static<typeof UnscannableEvent>;

/** Scanning one part failed (engine down, timeout): the message was refused with a temporary failure. */
export const ScanErrorEvent = Type.Object({
  kind: Type.Literal('error'),
  ...DetectionFields,
  verdict: Type.Literal('error'),
  reason: Type.Optional(UnscannableReason),
});
export type ScanErrorEvent = Static<typeof ScanErrorEvent>;

/** A session was relayed encrypted (TLS policy `passthrough`) and therefore not scanned. */
export const TlsUnscannedEvent = Type.Object({
  kind: Type.Literal('tls-unscanned'),
  /** Present when the session had already got a message reference. */
  ref: Type.Optional(MessageRef),
  time: Type.String(),
  protocol: Protocol,
  direction: Direction,
  /** The client's address, `host:port`. */
  client: Type.String(),
  /** Why it went unscanned, e.g. `passthrough`. */
  reason: Type.String(),
});
export type TlsUnscannedEvent = Static<typeof TlsUnscannedEvent>;

/** What an administrator did to a quarantine entry (audit trail). */
export const QUARANTINE_ACTIONS = ['quarantine-released', 'quarantine-deleted', 'quarantine-rescanned', 'quarantine-downloaded'] as const;
export type QuarantineActionKind = (typeof QUARANTINE_ACTIONS)[number];

/**
 * An administrator acted on a quarantine entry. `by` is the identity of the token (one admin token:
 * `admin`), `client` the address the request came from. Published with msgID
 * `audit-<ref>-<kind>-<time>`; each action is its own event.
 */
export const QuarantineActionEvent = Type.Object({
  kind: Type.Union(QUARANTINE_ACTIONS.map((k) => Type.Literal(k))),
  ref: MessageRef,
  time: Type.String(),
  by: Type.String(),
  client: Type.String(),
  /** Released to (release). */
  recipients: Type.Optional(Type.Array(Type.String())),
  /** e.g. upstream's reply (release) or the new verdict (rescan). */
  detail: Type.Optional(Type.String()),
});
export type QuarantineActionEvent = Static<typeof QuarantineActionEvent>;

export const ActivityEvent = Type.Union([ScannedEvent, InfectedEvent, UnscannableEvent, ScanErrorEvent, TlsUnscannedEvent, QuarantineActionEvent]);
export type ActivityEvent = Static<typeof ActivityEvent>;
export type ActivityEventKind = ActivityEvent['kind'];

/** A per-part finding: what GET /api/v1/events lists. */
export type DetectionEvent = InfectedEvent | UnscannableEvent | ScanErrorEvent;

export const ACTIVITY_EVENT_KINDS: readonly ActivityEventKind[] = ['scanned', 'infected', 'unscannable', 'error', 'tls-unscanned', ...QUARANTINE_ACTIONS];
