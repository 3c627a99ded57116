import { Type, type Static } from '@sinclair/typebox';

export const TlsMode = Type.Union([Type.Literal('passthrough'), Type.Literal('strip'), Type.Literal('terminate')], {
  description: 'passthrough: relay STARTTLS unscanned; strip: never offer it; terminate: offer it with our own certificate and scan',
});
export type TlsMode = Static<typeof TlsMode>;

export const DEFAULT_NOTICE_TEMPLATE = [
  'Mailwarden removed the attachment "{filename}" from this message.',
  '',
  'Reason: {reason}',
  'Date: {date}',
  'Message reference: {ref}',
  '',
  'The rest of the message was delivered unchanged. Contact your mail administrator',
  'and quote the message reference if you need the original attachment.',
].join('\n');

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
};

/** What is stored in the policy KV bucket and returned by GET /api/v1/policy. */
export const PolicyDocument = Type.Object({
  version: Type.Integer({ minimum: 0 }),
  updatedAt: Type.String({ format: 'date-time' }),
  policy: Policy,
});
export type PolicyDocument = Static<typeof PolicyDocument>;
