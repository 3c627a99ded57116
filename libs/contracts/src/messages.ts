import { Type, type Static } from '@sinclair/typebox';

/** A message reference: unique, safe as a NATS subject token and in an S3 key. */
export const MessageRef = Type.String({ pattern: '^[a-z0-9]{8,40}$' });

export const Protocol = Type.Union([Type.Literal('smtp'), Type.Literal('pop3')]);
export type Protocol = Static<typeof Protocol>;
export const Direction = Type.Union([Type.Literal('inbound'), Type.Literal('outbound')]);
export type Direction = Static<typeof Direction>;

/**
 * Published once per message by the gateway that owns the session: it is also the analysis job
 * (one per message, on a work queue). Bodies never travel on the bus; the gateway does no MIME work,
 * so the subject is not known here (the scanner reads it from the root header).
 */
export const Envelope = Type.Object({
  ref: MessageRef,
  protocol: Protocol,
  direction: Direction,
  receivedAt: Type.String(),
  mailFrom: Type.String(),
  rcptTo: Type.Array(Type.String()),
  rawKey: Type.String(),
  rawSize: Type.Integer({ minimum: 0 }),
  /** sha256 (hex) of raw.eml as stored: the reassembler checks the bytes it rebuilds from. */
  rawSha256: Type.String({ pattern: '^[0-9a-f]{64}$' }),
  /**
   * `queue`: the sender already has its 250 (queue mode, SMTP_DELIVERY=queue); the reassembler
   * hands the finished message to the delivery queue instead of a waiting gateway. Absent: proxy mode.
   */
  delivery: Type.Optional(Type.Literal('queue')),
  /**
   * Queue mode with scanning off for this protocol and direction (policy): the message still goes
   * through the queue, but the scanner passes it on unanalysed. Absent = scan.
   */
  scan: Type.Optional(Type.Literal(false)),
});
export type Envelope = Static<typeof Envelope>;

export const VerdictKind = Type.Union([
  Type.Literal('clean'),
  Type.Literal('infected'),
  Type.Literal('unscannable'),
  Type.Literal('error'),
]);
export type VerdictKind = Static<typeof VerdictKind>;

export const UnscannableReason = Type.Union([Type.Literal('encrypted'), Type.Literal('corrupt'), Type.Literal('limits')]);
export type UnscannableReason = Static<typeof UnscannableReason>;

/** What the engine (or the scanner's own archive check) said about one content. */
export const PartVerdict = Type.Object({
  kind: VerdictKind,
  /** Signature name for infected, heuristic name for unscannable, error text for error. */
  detail: Type.Optional(Type.String()),
  reason: Type.Optional(UnscannableReason),
  /** Engine and signature version that produced it (scan cache key). */
  engine: Type.Optional(Type.String()),
  /** Which interpretation of the bytes produced the finding (e.g. "base64 (no CTE header)", "uuencoded block"). */
  source: Type.Optional(Type.String()),
});
export type PartVerdict = Static<typeof PartVerdict>;

/** A byte range [start, end) of raw.eml. */
export const ByteRange = Type.Object({ start: Type.Integer({ minimum: 0 }), end: Type.Integer({ minimum: 0 }) });
export type ByteRange = Static<typeof ByteRange>;

/**
 * One entry of the part map: a MIME node of the message as the scanner parsed it, or a region of
 * bytes inside one (preamble, epilogue, a uuencoded block in a text body).
 * - `leaf`: a part with content; replacing it replaces `range` (its header block + body) by a notice part.
 * - `container`: a multipart or parsed message/rfc822 node; replaced whole when a finding spans its children.
 * - `region`: bytes with no header of their own; replaced by notice text lines.
 * `headerEnd` is where the body starts (after the empty line); equal to range.start for regions.
 */
export const MessagePart = Type.Object({
  path: Type.String(),
  kind: Type.Union([Type.Literal('leaf'), Type.Literal('container'), Type.Literal('region')]),
  range: ByteRange,
  headerEnd: Type.Integer({ minimum: 0 }),
  contentType: Type.String(),
  filename: Type.Optional(Type.String()),
  /** Size and sha256 of the content as decoded by its declared transfer encoding (leaves), else of the raw range. */
  size: Type.Integer({ minimum: 0 }),
  sha256: Type.String(),
  verdict: PartVerdict,
});
export type MessagePart = Static<typeof MessagePart>;

/**
 * The scanner's one verdict per message: the envelope, the root header block and the part map.
 * - `scanned`: every content was judged; `parts` says what each node got.
 * - `error`: a transient failure after the last attempt (engine down, S3): a temporary failure, never "clean".
 * - `rejected`: the message cannot be analysed within the limits (parts, depth, header size): a permanent failure.
 */
export const MessageVerdict = Type.Object({
  envelope: Envelope,
  outcome: Type.Union([Type.Literal('scanned'), Type.Literal('error'), Type.Literal('rejected')]),
  error: Type.Optional(Type.String()),
  subject: Type.Optional(Type.String()),
  /** The root header block, [0, end of the empty line). */
  rootHeader: ByteRange,
  parts: Type.Array(MessagePart),
  /** Distinct contents sent to the engine (after dedup), for metrics. */
  scans: Type.Integer({ minimum: 0 }),
  scannedAt: Type.String(),
});
export type MessageVerdict = Static<typeof MessageVerdict>;

export const RemovedPart = Type.Object({
  /** Path of the removed node in the part map. */
  part: Type.String(),
  filename: Type.Optional(Type.String()),
  kind: VerdictKind,
  detail: Type.Optional(Type.String()),
  reason: Type.Optional(UnscannableReason),
});
export type RemovedPart = Static<typeof RemovedPart>;

/** What the reassembler tells the gateway that owns the session. */
export const ScanResult = Type.Object({
  ref: MessageRef,
  /** reject: permanently refused (policy limits); the gateway answers 5xx with `error`. */
  outcome: Type.Union([Type.Literal('deliver'), Type.Literal('tempfail'), Type.Literal('reject')]),
  /** Object to deliver: the raw message when nothing was removed, else the rebuilt one. */
  key: Type.Optional(Type.String()),
  size: Type.Optional(Type.Integer({ minimum: 0 })),
  removed: Type.Array(RemovedPart),
  subjectPrefixed: Type.Boolean(),
  error: Type.Optional(Type.String()),
});
export type ScanResult = Static<typeof ScanResult>;
