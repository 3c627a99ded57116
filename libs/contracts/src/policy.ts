import { Type, type Static } from '@sinclair/typebox';

export const TlsMode = Type.Union([Type.Literal('passthrough'), Type.Literal('strip'), Type.Literal('terminate')], {
  description: 'passthrough: relay STARTTLS unscanned; strip: never offer it; terminate: offer it with our own certificate and scan',
});
export type TlsMode = Static<typeof TlsMode>;

/** The default notice until quarantine came: it promised recovery whatever the retention. Treated as the default. */
export const LEGACY_DEFAULT_NOTICE_TEMPLATE = [
  'Mailwarden removed the attachment "{filename}" from this message.',
  '',
  'Reason: {reason}',
  'Date: {date}',
  'Message reference: {ref}',
  '',
  'The rest of the message was delivered unchanged. Contact your mail administrator',
  'and quote the message reference if you need the original attachment.',
].join('\n');

/**
 * `{recovery}` says what became of the original: with a retention, how to get it back and for how
 * long; with `quarantine.retentionDays` 0, that it was not kept (see RECOVERY_TEXT in libs/mime).
 */
export const DEFAULT_NOTICE_TEMPLATE = [
  'Mailwarden removed the attachment "{filename}" from this message.',
  '',
  'Reason: {reason}',
  'Date: {date}',
  'Message reference: {ref}',
  '',
  'The rest of the message was delivered unchanged.',
  '{recovery}',
].join('\n');

/** Days a removed original is kept when the policy does not say (older stored policies). */
export const DEFAULT_QUARANTINE_RETENTION_DAYS = 30;

/** The whole policy document; every field has a documented default (PRODUCT.md §3). */
export const Policy = Type.Object(
  {
    antivirus: Type.Object(
      {
        enabled: Type.Boolean({ default: true }),
        smtp: Type.Boolean({ default: true, description: 'scan inbound SMTP' }),
        pop3: Type.Boolean({ default: true, description: 'scan POP3 retrievals' }),
        smtpOutbound: Type.Boolean({ default: false, description: 'scan outbound SMTP listeners too' }),
        rawMessageScan: Type.Optional(
          Type.Boolean({
            default: false,
            description: "second opinion: also scan the whole raw message with clamd's own mail parser; a detection no part explains makes the parts unscannable",
          }),
        ),
      },
      { additionalProperties: false },
    ),
    subjectPrefix: Type.Object(
      {
        enabled: Type.Boolean({ default: false }),
        text: Type.String({ default: '[VIRUS REMOVED]', minLength: 1, maxLength: 200, pattern: '^[^\\r\\n\\x00]*$' }),
      },
      { additionalProperties: false },
    ),
    unscannable: Type.Object(
      { action: Type.Union([Type.Literal('remove'), Type.Literal('deliver')], { default: 'remove' }) },
      { additionalProperties: false },
    ),
    tls: Type.Object({ smtp: TlsMode, pop3: TlsMode }, { additionalProperties: false }),
    notice: Type.Object(
      { template: Type.String({ default: DEFAULT_NOTICE_TEMPLATE, minLength: 1, maxLength: 10000 }) },
      { additionalProperties: false },
    ),
    limits: Type.Object(
      { maxMessageBytes: Type.Integer({ default: 52428800, minimum: 1024, maximum: 2147483647 }) },
      { additionalProperties: false },
    ),
    quarantine: Type.Optional(
      Type.Object(
        {
          retentionDays: Type.Number({
            default: DEFAULT_QUARANTINE_RETENTION_DAYS,
            minimum: 0,
            maximum: 3650,
            description: 'days the original of a message that had something removed is kept in quarantine; 0 = keep nothing. Fractions are allowed (0.5 = 12 h)',
          }),
        },
        { additionalProperties: false, description: 'originals of messages that had an attachment removed (absent: 30 days)' },
      ),
    ),
  },
  { additionalProperties: false },
);
export type Policy = Static<typeof Policy>;

export const DEFAULT_POLICY: Policy = {
  antivirus: { enabled: true, smtp: true, pop3: true, smtpOutbound: false, rawMessageScan: false },
  subjectPrefix: { enabled: false, text: '[VIRUS REMOVED]' },
  unscannable: { action: 'remove' },
  tls: { smtp: 'strip', pop3: 'strip' },
  notice: { template: DEFAULT_NOTICE_TEMPLATE },
  limits: { maxMessageBytes: 52428800 },
  quarantine: { retentionDays: DEFAULT_QUARANTINE_RETENTION_DAYS },
};

/** The retention in force: `quarantine.retentionDays`, or the default for a policy stored before the field existed. */
export function quarantineRetentionDays(policy: Policy): number {
  return policy.quarantine?.retentionDays ?? DEFAULT_QUARANTINE_RETENTION_DAYS;
}

/** What is stored in the policy KV bucket and returned by GET /api/v1/policy. */
export const PolicyDocument = Type.Object({
  version: Type.Integer({ minimum: 0 }),
  updatedAt: Type.String({ format: 'date-time' }),
  policy: Policy,
});
export type PolicyDocument = Static<typeof PolicyDocument>;
