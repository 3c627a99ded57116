/** Every NATS name in one place, so services and tests agree. */
export const Streams = {
  jobs: 'MW_JOBS',
  verdicts: 'MW_VERDICTS',
  results: 'MW_RESULTS',
  events: 'MW_EVENTS',
  /** Queue mode: one delivery job per finished message, until every recipient is done or bounced. */
  delivery: 'MW_DELIVERY',
} as const;

export const Subjects = {
  job: (ref: string) => `mw.job.${ref}`,
  /** Queue mode: a message whose scan failed, scanned again (same stream and scanners; only the reassembler publishes here). */
  rescan: (ref: string) => `mw.job.rescan.${ref}`,
  verdict: (ref: string) => `mw.verdict.${ref}`,
  result: (ref: string) => `mw.result.${ref}`,
  event: (kind: string) => `mw.event.${kind}`,
  delivery: (ref: string) => `mw.delivery.${ref}`,
} as const;

export const Buckets = {
  policy: 'mw-policy',
  scanCache: 'mw-scan-cache',
  /** Queue mode: the delivery state of each queued message (`q.<ref>`) and the record of each finished one (`done.<ref>`). */
  delivery: 'mw-delivery',
  /** POP3: the delivered (scanned) size of messages already scanned, by a hash of mailbox, UIDL and upstream size (look-ahead memory). */
  pop3Sizes: 'mw-pop3-sizes',
} as const;

/** Keys of the delivery bucket: listing `q.*` is the queue; `done.<ref>` is what makes a delivery never repeat. */
export const DeliveryKeys = {
  queued: (ref: string) => `q.${ref}`,
  done: (ref: string) => `done.${ref}`,
  queuedPrefix: 'q.',
} as const;

/** The stream behind a KV bucket. */
export const kvStream = (bucket: string) => `KV_${bucket}`;

export const POLICY_KEY = 'policy';

export const Consumers = {
  scanners: 'scanners',
  reassemblers: 'reassemblers',
  deliverers: 'deliverers',
} as const;

/** The S3 object layout of one message; gateways write raw, the reassembler the rebuilt one. */
export const ObjectKeys = {
  raw: (ref: string) => `msg/${ref}/raw.eml`,
  rebuilt: (ref: string) => `msg/${ref}/rebuilt.eml`,
  /** Everything in quarantine lives below this prefix (its own lifecycle rule, its own sweep). */
  quarantinePrefix: 'quarantine/',
  /** The original as received, kept when the policy removed something. */
  quarantineRaw: (ref: string) => `quarantine/${ref}/raw.eml`,
  /** Its metadata (QuarantineEntry), written after the copy: an entry with a meta.json always has its original. */
  quarantineMeta: (ref: string) => `quarantine/${ref}/meta.json`,
} as const;
