import { parseHostPort, type HostPort } from '@mailwarden/config';
import type { Direction } from '@mailwarden/contracts';

export interface ListenerSpec {
  direction: Direction;
  listen: HostPort;
  upstream: HostPort;
  /** SMTPS: TLS from the first byte. */
  implicitTls: boolean;
}

/** The inbound listener always; SMTPS (inbound) and the outbound one when configured. */
export function listenerSpecs(env: Record<string, string>): ListenerSpec[] {
  if (!env.SMTP_UPSTREAM) throw new Error('SMTP_UPSTREAM is not set: the gateway needs the mail server to forward to');
  const upstream = parseHostPort(env.SMTP_UPSTREAM, 'SMTP_UPSTREAM');
  const specs: ListenerSpec[] = [{ direction: 'inbound', listen: parseHostPort(env.SMTP_LISTEN!, 'SMTP_LISTEN'), upstream, implicitTls: false }];
  if (env.SMTPS_LISTEN) specs.push({ direction: 'inbound', listen: parseHostPort(env.SMTPS_LISTEN, 'SMTPS_LISTEN'), upstream, implicitTls: true });
  if (env.SMTP_OUTBOUND_LISTEN) {
    if (!env.SMTP_OUTBOUND_UPSTREAM) throw new Error('SMTP_OUTBOUND_LISTEN is set but SMTP_OUTBOUND_UPSTREAM is not');
    specs.push({
      direction: 'outbound',
      listen: parseHostPort(env.SMTP_OUTBOUND_LISTEN, 'SMTP_OUTBOUND_LISTEN'),
      upstream: parseHostPort(env.SMTP_OUTBOUND_UPSTREAM, 'SMTP_OUTBOUND_UPSTREAM'),
      implicitTls: false,
    });
  }
  return specs;
}
