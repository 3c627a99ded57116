import { parseHostPort, type HostPort } from '@mailwarden/config';
import type { Direction } from '@mailwarden/contracts';

export interface ListenerSpec {
  direction: Direction;
  listen: HostPort;
  upstream: HostPort;
  /** SMTPS: TLS from the first byte. */
  implicitTls: boolean;
  /** `proxy` (the 250 is upstream's) or `queue` (the 250 once durable; delivered behind a queue). */
  delivery: DeliveryMode;
}

export type DeliveryMode = 'proxy' | 'queue';

export function parseDeliveryMode(value: string | undefined, name: string): DeliveryMode {
  const v = (value || 'proxy').trim().toLowerCase();
  if (v !== 'proxy' && v !== 'queue') throw new Error(`${name} must be proxy or queue, not ${JSON.stringify(value)}`);
  return v;
}

/** The inbound listener always; SMTPS (inbound) and the outbound one when configured. */
export function listenerSpecs(env: Record<string, string>): ListenerSpec[] {
  if (!env.SMTP_UPSTREAM) throw new Error('SMTP_UPSTREAM is not set: the gateway needs the mail server to forward to');
  const upstream = parseHostPort(env.SMTP_UPSTREAM, 'SMTP_UPSTREAM');
  const delivery = parseDeliveryMode(env.SMTP_DELIVERY, 'SMTP_DELIVERY');
  const specs: ListenerSpec[] = [{ direction: 'inbound', listen: parseHostPort(env.SMTP_LISTEN!, 'SMTP_LISTEN'), upstream, implicitTls: false, delivery }];
  if (env.SMTPS_LISTEN) specs.push({ direction: 'inbound', listen: parseHostPort(env.SMTPS_LISTEN, 'SMTPS_LISTEN'), upstream, implicitTls: true, delivery });
  if (env.SMTP_OUTBOUND_LISTEN) {
    if (!env.SMTP_OUTBOUND_UPSTREAM) throw new Error('SMTP_OUTBOUND_LISTEN is set but SMTP_OUTBOUND_UPSTREAM is not');
    specs.push({
      direction: 'outbound',
      listen: parseHostPort(env.SMTP_OUTBOUND_LISTEN, 'SMTP_OUTBOUND_LISTEN'),
      upstream: parseHostPort(env.SMTP_OUTBOUND_UPSTREAM, 'SMTP_OUTBOUND_UPSTREAM'),
      implicitTls: false,
      delivery: parseDeliveryMode(env.SMTP_OUTBOUND_DELIVERY, 'SMTP_OUTBOUND_DELIVERY'),
    });
  }
  return specs;
}
