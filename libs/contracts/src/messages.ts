import { Type, type Static } from '@sinclair/typebox';

/** A message reference: unique, safe as a NATS subject token and in an S3 key. */
export const MessageRef = Type.String({ pattern: '^[a-z0-9]{8,40}$' });

export const Protocol = Type.Union([Type.Literal('smtp'), Type.Literal('pop3')]);
export type Protocol = Static<typeof Protocol>;
export const Direction = Type.Union([Type.Literal('inbound'), Type.Literal('outbound')]);
export type Direction = Static<typeof Direction>;

/** One decoded MIME leaf part stored in S3, in document order (index = leaf number). */
export const PartRef = Type.Object({
  index: Type.Integer({ minimum: 0 }),
  key: Type.String(),
  size: Type.Integer({ minimum: 0 }),
  sha256: Type.String(),
  contentType: Type.String(),
  filename: Type.Optional(Type.String()),
});
export type PartRef = Static<typeof PartRef>;

/** Published once per message by the gateway that owns the session. Bodies never travel on the bus. */
export const Envelope = Type.Object({
  ref: MessageRef,
  protocol: Protocol,
  direction: Direction,
  receivedAt: Type.String(),
  mailFrom: Type.String(),
  rcptTo: Type.Array(Type.String()),
  subject: Type.Optional(Type.String()),
  rawKey: Type.String(),
  rawSize: Type.Integer({ minimum: 0 }),
  parts: Type.Array(PartRef),
});
export type Envelope = Static<typeof Envelope>;

/** One scan job per part, pulled by scanner workers from a work queue. */
export const ScanJob = Type.Object({
  ref: MessageRef,
  part: Type.Integer({ minimum: 0 }),
  parts: Type.Integer({ minimum: 1 }),
  key: Type.String(),
  size: Type.Integer({ minimum: 0 }),
  sha256: Type.String(),
  filename: Type.Optional(Type.String()),
});
export type ScanJob = Static<typeof ScanJob>;

export const VerdictKind = Type.Union([
  Type.Literal('clean'),
  Type.Literal('infected'),
  Type.Literal('unscannable'),
  Type.Literal('error'),
]);
export type VerdictKind = Static<typeof VerdictKind>;

export const UnscannableReason = Type.Union([Type.Literal('encrypted'), Type.Literal('corrupt'), Type.Literal('limits')]);
export type UnscannableReason = Static<typeof UnscannableReason>;

export const Verdict = Type.Object({
  ref: MessageRef,
  part: Type.Integer({ minimum: 0 }),
  parts: Type.Integer({ minimum: 1 }),
  kind: VerdictKind,
  /** Signature name for infected, clamd's heuristic name for unscannable, error text for error. */
  detail: Type.Optional(Type.String()),
  reason: Type.Optional(UnscannableReason),
  engine: Type.Optional(Type.String()),
  scannedAt: Type.String(),
});
export type Verdict = Static<typeof Verdict>;

export const RemovedPart = Type.Object({
  part: Type.Integer(),
  filename: Type.Optional(Type.String()),
  kind: VerdictKind,
  detail: Type.Optional(Type.String()),
  reason: Type.Optional(UnscannableReason),
});
export type RemovedPart = Static<typeof RemovedPart>;

/** What the reassembler tells the gateway that owns the session. */
export const ScanResult = Type.Object({
  ref: MessageRef,
  outcome: Type.Union([Type.Literal('deliver'), Type.Literal('tempfail')]),
  /** Object to deliver: the raw message when nothing was removed, else the rebuilt one. */
  key: Type.Optional(Type.String()),
  size: Type.Optional(Type.Integer({ minimum: 0 })),
  removed: Type.Array(RemovedPart),
  subjectPrefixed: Type.Boolean(),
  error: Type.Optional(Type.String()),
});
export type ScanResult = Static<typeof ScanResult>;
