import { Type, type Static } from '@sinclair/typebox';
import { Direction, MessageRef, Protocol, UnscannableReason } from './messages.js';

/** One part the policy removed, as kept with the original. */
export const QuarantinedPart = Type.Object({
  /** Path in the part map, e.g. "1.2". */
  path: Type.String(),
  filename: Type.Optional(Type.String()),
  contentType: Type.String(),
  /** Size and sha256 of the content (decoded by its transfer encoding for a leaf). */
  size: Type.Integer({ minimum: 0 }),
  sha256: Type.String(),
  verdict: Type.Union([Type.Literal('infected'), Type.Literal('unscannable')]),
  reason: Type.Optional(UnscannableReason),
  /** Signature name (infected) or clamd's heuristic (unscannable). */
  signature: Type.Optional(Type.String()),
});
export type QuarantinedPart = Static<typeof QuarantinedPart>;

export const QuarantineRelease = Type.Object({
  /** Who released it: `admin (<client ip>)`. */
  by: Type.String(),
  at: Type.String(),
  recipients: Type.Array(Type.String()),
  headerAdded: Type.Boolean(),
  /** Upstream's reply to the final dot. */
  reply: Type.String(),
});
export type QuarantineRelease = Static<typeof QuarantineRelease>;

export const QuarantineRescan = Type.Object({
  by: Type.String(),
  at: Type.String(),
  verdict: Type.Union([Type.Literal('clean'), Type.Literal('infected'), Type.Literal('unscannable')]),
  /** The parts still found, with what the engine says today. */
  findings: Type.Array(Type.Object({ path: Type.String(), filename: Type.Optional(Type.String()), verdict: Type.String(), reason: Type.Optional(UnscannableReason), signature: Type.Optional(Type.String()) })),
  engine: Type.Optional(Type.String()),
});
export type QuarantineRescan = Static<typeof QuarantineRescan>;

/**
 * `quarantine/<ref>/meta.json`: what the reassembler kept, next to `quarantine/<ref>/raw.eml`.
 * For SMTP `ref` is the message reference; for POP3 it is derived from the raw message's sha256
 * (`p` + 39 hex digits), so the same upstream message retrieved again makes no second entry.
 */
export const QuarantineEntry = Type.Object({
  ref: MessageRef,
  /** The message reference of the delivery that quarantined it (equal to `ref` for SMTP). */
  messageRef: MessageRef,
  /** When it was quarantined (ISO 8601); retention counts from here. */
  time: Type.String(),
  protocol: Protocol,
  direction: Direction,
  sender: Type.String(),
  recipients: Type.Array(Type.String()),
  subject: Type.Optional(Type.String()),
  size: Type.Integer({ minimum: 0 }),
  sha256: Type.String({ pattern: '^[0-9a-f]{64}$' }),
  parts: Type.Array(QuarantinedPart),
  /** Every release, oldest first. */
  releases: Type.Array(QuarantineRelease),
  lastRescan: Type.Optional(QuarantineRescan),
});
export type QuarantineEntry = Static<typeof QuarantineEntry>;

/** The quarantine reference of a message: its own ref for SMTP, a stable one from the content for POP3. */
export function quarantineRef(envelope: { ref: string; protocol: Protocol; rawSha256: string }): string {
  return envelope.protocol === 'pop3' ? `p${envelope.rawSha256.slice(0, 39)}` : envelope.ref;
}
