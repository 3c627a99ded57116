import { Subjects, type Direction, type Protocol, type TlsUnscannedEvent } from '@mailwarden/contracts';
import type { Logger } from '@mailwarden/log';
import type { Bus } from './connect.js';

/**
 * A session went encrypted end to end (TLS passthrough) and was not scanned: an activity event the
 * config service counts and lists. Fire and forget: losing the count must never hold up mail.
 */
export function reportTlsUnscanned(bus: Bus, log: Logger, info: { ref: string; protocol: Protocol; direction: Direction; client: string }): void {
  const event: TlsUnscannedEvent = { kind: 'tls-unscanned', time: new Date().toISOString(), reason: 'passthrough', ...info };
  bus.js
    .publish(Subjects.event('tls-unscanned'), JSON.stringify(event), { msgID: `event-${info.ref}-tls` })
    .catch((err: Error) => log.warn({ event: 'event.publish_failed', err: err.message }, 'could not publish activity event'));
}
