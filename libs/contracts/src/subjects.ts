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
