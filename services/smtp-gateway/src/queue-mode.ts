import type { HostPort } from '@mailwarden/config';
import type { Direction } from '@mailwarden/contracts';
import type { Logger } from '@mailwarden/log';
import type { MessageQueue } from '@mailwarden/pipeline';
import { SmtpConnectionPool, type UpstreamTlsOptions } from '@mailwarden/smtp-client';
import type { BackPressure } from './back-pressure.js';
import { QueueAcceptance } from './queue-acceptance.js';
import { RecipientVerifier } from './recipient-verifier.js';

export interface QueueModeDeps {
  queue: MessageQueue;
  backPressure: BackPressure;
  hostname: string;
  rcptCacheMs: number;
  timeouts: { connectTimeoutMs: number; commandTimeoutMs: number };
  upstreamTls: UpstreamTlsOptions;
  log: Logger;
}

/** Wires queue mode for one listener: its upstream (recipient checks) and the shared queue and back-pressure. */
export function queueAcceptanceFor(deps: QueueModeDeps, listener: { direction: Direction; upstream: HostPort }): QueueAcceptance {
  const pool = new SmtpConnectionPool({ ...listener.upstream, ...deps.timeouts, helloName: deps.hostname, tls: deps.upstreamTls });
  const log = deps.log.child({ listener: listener.direction });
  return new QueueAcceptance({ queue: deps.queue, backPressure: deps.backPressure, verifier: new RecipientVerifier(pool, deps.rcptCacheMs, log), direction: listener.direction, hostname: deps.hostname, log });
}
