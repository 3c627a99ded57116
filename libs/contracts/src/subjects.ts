/** Every NATS name in one place, so services and tests agree. */
export const Streams = {
  envelopes: 'MW_ENVELOPES',
  jobs: 'MW_JOBS',
  verdicts: 'MW_VERDICTS',
  results: 'MW_RESULTS',
  events: 'MW_EVENTS',
} as const;

export const Subjects = {
  envelope: (ref: string) => `mw.envelope.${ref}`,
  job: (ref: string, part: number) => `mw.job.${ref}.${part}`,
  verdict: (ref: string, part: number) => `mw.verdict.${ref}.${part}`,
  result: (ref: string) => `mw.result.${ref}`,
  event: (kind: string) => `mw.event.${kind}`,
} as const;

export const Buckets = {
  policy: 'mw-policy',
  joins: 'mw-joins',
} as const;

export const POLICY_KEY = 'policy';

export const Consumers = {
  scanners: 'scanners',
  reassemblers: 'reassemblers',
} as const;

/** The S3 object layout of one message; gateways write raw and parts, the reassembler the rebuilt one. */
export const ObjectKeys = {
  raw: (ref: string) => `msg/${ref}/raw.eml`,
  part: (ref: string, index: number) => `msg/${ref}/part-${index}`,
  rebuilt: (ref: string) => `msg/${ref}/rebuilt.eml`,
} as const;
