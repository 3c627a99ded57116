/** What one benchmark run measures: the full matrix, or a quick subset (same ids, smaller bounds). */

export const KB = 1024;
export const MB = 1024 * 1024;

export interface LoadPhase {
  id: string;
  /** Run in every round (targets: medians over the rounds), else in the first round only. */
  repeat?: boolean;
  kind: 'mailwarden' | 'direct';
  size: number;
  concurrency: number;
  infectedRatio: number;
  maxMessages: number;
  maxSeconds: number;
}

export interface CeilingPhase {
  id: string;
  repeat?: boolean;
  kind: 'clamd';
  size: number;
  connections: number;
  infectedRatio: number;
  maxScans: number;
  maxSeconds: number;
}

export type Phase = LoadPhase | CeilingPhase;

export interface Plan {
  /** Run first, with the services behind the counting S3 proxy: object-store round trips per message. */
  accounting: LoadPhase[];
  /** Run with the services talking to S3 directly (the proxy would cost CPU and latency). */
  phases: Phase[];
  /** The phases are run this many times, interleaved (those with `repeat`); figures are medians. */
  rounds: number;
  massMailing: { messages: number; concurrency: number; maxSeconds: number; size: number };
  memory: { attachmentBytes: number };
}

const sizeName = (size: number): string => (size >= MB ? `${size / MB}m` : `${size / KB}k`);

const ceiling = (size: number, connections: number, maxScans: number, maxSeconds: number): CeilingPhase => ({
  id: `clamd-${sizeName(size)}-x${connections}`,
  kind: 'clamd',
  size,
  connections,
  infectedRatio: 0.1,
  maxScans,
  maxSeconds,
});

const load = (kind: LoadPhase['kind'], size: number, concurrency: number, infectedRatio: number, maxMessages: number, maxSeconds: number, prefix = 'mw'): LoadPhase => ({
  id: kind === 'direct' ? `direct-${sizeName(size)}-c${concurrency}` : `${prefix}-${sizeName(size)}-c${concurrency}-${infectedRatio > 0 ? 'eicar10' : 'clean'}`,
  kind,
  size,
  concurrency,
  infectedRatio,
  maxMessages,
  maxSeconds,
});

/** The phases the targets are computed from (all in both plans). */
export const TARGET_PHASES = {
  latency: 'mw-100k-c1-eicar10',
  efficiency: 'mw-100k-c32-eicar10',
  throughput100k: 'mw-100k-c32-eicar10',
  throughput1m: 'mw-1m-c8-eicar10',
  objectStore: 's3-100k-c4-eicar10',
  massMailingTwin: 's3-100k-c8-clean',
  ceiling100k: /^clamd-100k-/,
  ceiling1m: /^clamd-1m-/,
} as const;

const accounting = (): LoadPhase[] => [
  load('mailwarden', 100 * KB, 4, 0.1, 100, 20, 's3'),
  load('mailwarden', MB, 4, 0.1, 30, 20, 's3'),
  // The mass mailing's twin (same size, concurrency, clean mix and proxy), but unique attachments.
  load('mailwarden', 100 * KB, 8, 0, 300, 10, 's3'),
];

const rep = <T extends Phase>(p: T): T => ({ ...p, repeat: true });

export function fullPlan(): Plan {
  const mw = (ratio: number, targets: boolean): LoadPhase[] => [
    ...(targets ? [] : [load('mailwarden', 100 * KB, 1, ratio, 300, 10)]),
    load('mailwarden', 100 * KB, 8, ratio, 1000, 12),
    ...(targets ? [] : [load('mailwarden', 100 * KB, 32, ratio, 1500, 15)]),
    load('mailwarden', MB, 1, ratio, 100, 10),
    ...(targets ? [] : [load('mailwarden', MB, 8, ratio, 300, 15)]),
    load('mailwarden', MB, 32, ratio, 400, 15),
  ];
  return {
    accounting: accounting(),
    rounds: 3,
    phases: [
      // The phases the targets come from: three interleaved rounds.
      rep(ceiling(100 * KB, 4, 3000, 4)),
      rep(ceiling(100 * KB, 8, 3000, 4)),
      rep(ceiling(MB, 4, 300, 4)),
      rep(ceiling(MB, 8, 300, 4)),
      rep(load('mailwarden', 100 * KB, 1, 0.1, 300, 10)),
      rep(load('mailwarden', 100 * KB, 32, 0.1, 1500, 15)),
      rep(load('mailwarden', MB, 8, 0.1, 300, 15)),
      // The rest of the matrix, once.
      load('direct', 100 * KB, 1, 0.1, 4000, 4),
      load('direct', 100 * KB, 8, 0.1, 8000, 4),
      load('direct', 100 * KB, 32, 0.1, 10000, 4),
      load('direct', MB, 8, 0.1, 2000, 4),
      ...mw(0.1, true),
      ...mw(0, false),
    ],
    massMailing: { messages: 1000, concurrency: 8, maxSeconds: 60, size: 100 * KB },
    memory: { attachmentBytes: 50 * MB },
  };
}

export function quickPlan(): Plan {
  return {
    accounting: accounting(),
    rounds: 1,
    phases: [
      ceiling(100 * KB, 8, 1500, 4),
      ceiling(MB, 8, 150, 4),
      load('direct', 100 * KB, 1, 0.1, 2000, 3),
      load('direct', 100 * KB, 32, 0.1, 5000, 3),
      load('direct', MB, 8, 0.1, 1000, 3),
      load('mailwarden', 100 * KB, 1, 0.1, 150, 10),
      load('mailwarden', 100 * KB, 32, 0.1, 600, 15),
      load('mailwarden', MB, 8, 0.1, 150, 15),
    ],
    massMailing: { messages: 200, concurrency: 8, maxSeconds: 30, size: 100 * KB },
    memory: { attachmentBytes: 50 * MB },
  };
}
