import { Type, type Static } from '@sinclair/typebox';
import { DetectionAction, Direction, Policy, Protocol, QUARANTINE_ACTIONS, QuarantineEntry, UnscannableReason } from '@mailwarden/contracts';

/** Every error reply: a stable `error` code, a sentence for people, and the field when one is to blame. */
export const ErrorBody = Type.Object(
  {
    statusCode: Type.Integer(),
    error: Type.String({ description: 'stable code: unauthorized, invalid_request, precondition_failed, not_found, unavailable, internal_error' }),
    message: Type.String(),
    field: Type.Optional(Type.String({ description: 'dotted path of the first invalid field, e.g. subjectPrefix.text' })),
    errors: Type.Optional(Type.Array(Type.Object({ field: Type.String(), message: Type.String() }))),
    currentVersion: Type.Optional(Type.Integer({ description: 'on 412: the version now stored' })),
  },
);

export const PolicyDocumentBody = Type.Object({
  version: Type.Integer({ minimum: 0, description: 'increases with every change; also the ETag' }),
  updatedAt: Type.String({ description: 'ISO 8601' }),
  policy: Policy,
});

export const PolicyChange = Type.Object({
  path: Type.String({ description: 'dotted path of the changed field' }),
  old: Type.Optional(Type.Unknown()),
  new: Type.Optional(Type.Unknown()),
});

export const HistoryEntry = Type.Object({
  version: Type.Integer(),
  time: Type.String(),
  changedBy: Type.Optional(Type.String()),
  /** The version this one is compared with; null for the oldest one kept. */
  previousVersion: Type.Union([Type.Integer(), Type.Null()]),
  changes: Type.Array(PolicyChange),
  policy: Policy,
});
export type HistoryEntry = Static<typeof HistoryEntry>;

export const HistoryBody = Type.Object({ entries: Type.Array(HistoryEntry, { description: 'newest first; the last 64 versions are kept' }) });

export const StatsBody = Type.Object({
  since: Type.Union([Type.String(), Type.Null()], { description: 'time of the oldest event counted (events are kept 30 days)' }),
  lastEventAt: Type.Union([Type.String(), Type.Null()]),
  complete: Type.Boolean({ description: 'false while the event history is still being replayed after a start' }),
  messages: Type.Object({ scanned: Type.Integer(), smtp: Type.Integer(), pop3: Type.Integer(), tempfailed: Type.Integer() }),
  infected: Type.Integer({ description: 'infected attachments' }),
  unscannable: Type.Object({ total: Type.Integer(), encrypted: Type.Integer(), corrupt: Type.Integer(), limits: Type.Integer() }),
  removedAttachments: Type.Integer(),
  errors: Type.Integer({ description: 'parts whose scan failed; their message got a temporary failure' }),
  tlsUnscanned: Type.Object({ total: Type.Integer(), smtp: Type.Integer(), pop3: Type.Integer() }, { description: 'sessions relayed encrypted, not scanned' }),
  quarantine: Type.Object(
    { released: Type.Integer(), deleted: Type.Integer(), rescanned: Type.Integer(), downloaded: Type.Integer() },
    { description: 'administrator actions on quarantine entries' },
  ),
});

export const AdminAction = Type.Object({
  id: Type.Integer({ description: 'event sequence number' }),
  kind: Type.Union(QUARANTINE_ACTIONS.map((k) => Type.Literal(k))),
  ref: Type.String({ description: 'quarantine reference' }),
  time: Type.String(),
  by: Type.String({ description: 'identity of the token: admin' }),
  client: Type.String({ description: 'client address of the request' }),
  recipients: Type.Optional(Type.Array(Type.String())),
  detail: Type.Optional(Type.String()),
});

export const AuditBody = Type.Object({ actions: Type.Array(AdminAction) });

export const Detection = Type.Object({
  id: Type.Integer({ description: 'event sequence number' }),
  ref: Type.String(),
  time: Type.String(),
  protocol: Protocol,
  direction: Direction,
  sender: Type.String(),
  recipients: Type.Array(Type.String()),
  subject: Type.Optional(Type.String()),
  file: Type.Optional(Type.String()),
  verdict: Type.Union([Type.Literal('infected'), Type.Literal('unscannable'), Type.Literal('error')]),
  detail: Type.Optional(Type.String({ description: 'signature name, heuristic, or error text' })),
  reason: Type.Optional(UnscannableReason),
  action: DetectionAction,
});

export const EventsQuery = Type.Object({
  limit: Type.Integer({ minimum: 1, maximum: 1000, default: 50, description: 'how many detections, newest first' }),
});

export const EventsBody = Type.Object({ events: Type.Array(Detection) });

export const EngineBody = Type.Object({
  reachable: Type.Boolean({ description: 'true when at least one clamd answers' }),
  checkedAt: Type.String(),
  engines: Type.Array(
    Type.Object({
      address: Type.String(),
      reachable: Type.Boolean(),
      engine: Type.Optional(Type.String()),
      signatures: Type.Optional(Type.String({ description: 'signature database version' })),
      raw: Type.Optional(Type.String()),
      error: Type.Optional(Type.String()),
    }),
  ),
});

export const HealthBody = Type.Object({
  status: Type.Union([Type.Literal('ok'), Type.Literal('unavailable')]),
  checks: Type.Record(Type.String(), Type.String()),
});

export const QuarantineRefParams = Type.Object({
  ref: Type.String({ pattern: '^[a-z0-9]{8,40}$', description: 'quarantine reference (the one the notice quotes)' }),
});

export const QuarantineQuery = Type.Object({
  from: Type.Optional(Type.String({ pattern: '^\\d{4}-\\d\\d-\\d\\dT', description: 'quarantined at or after (ISO 8601)' })),
  to: Type.Optional(Type.String({ pattern: '^\\d{4}-\\d\\d-\\d\\dT', description: 'quarantined before (ISO 8601)' })),
  recipient: Type.Optional(Type.String({ minLength: 1, maxLength: 320, description: 'part of a recipient address' })),
  sender: Type.Optional(Type.String({ minLength: 1, maxLength: 320, description: 'part of the sender address' })),
  reason: Type.Optional(
    Type.Union([Type.Literal('infected'), Type.Literal('encrypted'), Type.Literal('corrupt'), Type.Literal('limits')], { description: 'why a part was removed' }),
  ),
  signature: Type.Optional(Type.String({ minLength: 1, maxLength: 200, description: 'part of a signature or heuristic name' })),
  ref: Type.Optional(Type.String({ pattern: '^[a-z0-9]{1,40}$', description: 'start of the quarantine reference' })),
  limit: Type.Integer({ minimum: 1, maximum: 500, default: 50, description: 'entries per page, newest first' }),
  offset: Type.Integer({ minimum: 0, default: 0, description: 'entries to skip (nextOffset of the previous page)' }),
});

export const QuarantineListBody = Type.Object({
  entries: Type.Array(QuarantineEntry),
  total: Type.Integer({ description: 'entries matching the filters' }),
  nextOffset: Type.Optional(Type.Integer({ description: 'offset of the next page; absent on the last one' })),
  retentionDays: Type.Number({ description: 'the policy retention now in force' }),
});

export const ReleaseBody = Type.Object(
  {
    recipients: Type.Optional(
      Type.Array(Type.String({ pattern: '^[^\\s<>@,;]+@[^\\s<>@,;]+$', maxLength: 320 }), {
        minItems: 1,
        maxItems: 100,
        description: 'deliver to these addresses instead of the original recipients',
      }),
    ),
    addHeader: Type.Optional(Type.Boolean({ description: 'prepend `X-Mailwarden-Released: <who> <when> (<ref>)`; default false: the original unchanged' })),
  },
  { additionalProperties: false },
);
export type ReleaseBody = Static<typeof ReleaseBody>;

/** Queue mode: a message reference in the delivery queue (the one the 250 quoted). */
export const QueueRefParams = Type.Object({
  ref: Type.String({ pattern: '^[a-z0-9]{8,40}$', description: 'message reference, as in the 250 reply (`queued as <ref>`)' }),
});

export const QueueQuery = Type.Object({
  limit: Type.Optional(Type.Integer({ minimum: 1, maximum: 1000, default: 100, description: 'messages listed, oldest first' })),
});

const Route = Type.Union([Type.Literal('inbound'), Type.Literal('outbound'), Type.Literal('bounce')], { description: 'inbound/outbound: the listener\'s upstream; bounce: a DSN to a sender' });

export const QueuedMessageBody = Type.Object({
  ref: Type.String(),
  route: Route,
  from: Type.String({ description: 'envelope sender; empty for a DSN' }),
  to: Type.Array(Type.String()),
  size: Type.Integer(),
  receivedAt: Type.String(),
  attempts: Type.Integer(),
  delivered: Type.Array(Type.String()),
  failed: Type.Array(Type.String()),
  nextAttemptAt: Type.Optional(Type.String()),
  lastAttemptAt: Type.Optional(Type.String()),
  lastError: Type.Optional(Type.String()),
  deliveringBy: Type.Optional(Type.String({ description: 'the deliverer (host/pid) working on it now' })),
  interrupted: Type.Optional(Type.Integer({ description: 'attempts cut off between DATA and the record of upstream\'s reply: possible duplicates' })),
});

export const QueueSummaryBody = Type.Object({
  count: Type.Integer({ description: 'messages in the delivery queue' }),
  oldest: Type.Union([Type.String(), Type.Null()], { description: 'when the oldest queued message was accepted' }),
  upstreams: Type.Array(
    Type.Object({
      route: Route,
      upstream: Type.Optional(Type.String()),
      queued: Type.Integer(),
      failing: Type.Integer({ description: 'queued messages whose last attempt did not deliver to every recipient' }),
      lastError: Type.Optional(Type.String()),
    }),
  ),
  messages: Type.Array(QueuedMessageBody),
});

const Outcome = Type.Object({ recipient: Type.String(), code: Type.Integer({ description: '0: no reply (connection failure, deadline)' }), reply: Type.String() });

export const QueueEntryBody = Type.Object({
  status: Type.Union([Type.Literal('queued'), Type.Literal('finished')]),
  message: Type.Optional(QueuedMessageBody),
  attempts: Type.Optional(Type.Array(Type.Object({ at: Type.String(), upstream: Type.String(), outcomes: Type.Array(Outcome) }), { description: 'the last attempts (up to 20), oldest first' })),
  record: Type.Optional(
    Type.Object({
      finishedAt: Type.String(),
      outcome: Type.Union([Type.Literal('delivered'), Type.Literal('bounced'), Type.Literal('partial'), Type.Literal('deleted')]),
      delivered: Type.Array(Type.String()),
      failed: Type.Array(Outcome),
      attemptCount: Type.Integer(),
      dsnRef: Type.Optional(Type.String()),
      interrupted: Type.Optional(Type.Integer({ description: 'attempts cut off between DATA and the record of upstream\'s reply: possible duplicates' })),
    }),
  ),
});
