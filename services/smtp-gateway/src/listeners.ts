import { parseHostPort, type HostPort } from '@mailwarden/config';
import type { Direction } from '@mailwarden/contracts';

export interface ListenerSpec {
  direction: Direction;
  listen: HostPort;
  upstream: HostPort;
}

/** The inbound listener always; the outbound one when SMTP_OUTBOUND_LISTEN is set. */
export function listenerSpecs(env: Record<string, string>): ListenerSpec[] {
  if (!env.SMTP_UPSTREAM) throw new Error('SMTP_UPSTREAM is not set: the gateway needs the mail server to forward to');
  const specs: ListenerSpec[] = [
    { direction: 'inbound', listen: parseHostPort(env.SMTP_LISTEN!, 'SMTP_LISTEN'), upstream: parseHostPort(env.SMTP_UPSTREAM, 'SMTP_UPSTREAM') },
  ];
  if (env.SMTP_OUTBOUND_LISTEN) {
    if (!env.SMTP_OUTBOUND_UPSTREAM) throw new Error('SMTP_OUTBOUND_LISTEN is set but SMTP_OUTBOUND_UPSTREAM is not');
    specs.push({
      direction: 'outbound',
      listen: parseHostPort(env.SMTP_OUTBOUND_LISTEN, 'SMTP_OUTBOUND_LISTEN'),
      upstream: parseHostPort(env.SMTP_OUTBOUND_UPSTREAM, 'SMTP_OUTBOUND_UPSTREAM'),
    });
  }
  return specs;
}
