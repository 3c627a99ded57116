import { isIPv6 } from 'node:net';
import { ConfigError } from '@mailwarden/config';
import type { SMTPServerSession } from 'smtp-server';
import type { UpstreamSmtpClient } from '@mailwarden/smtp-client';
import type { SmtpReply } from './smtp-reply.js';

/**
 * SMTP_UPSTREAM_XCLIENT: `auto` tells upstream who the real client is (Postfix XCLIENT when upstream
 * offers it, else XFORWARD); `off` sends neither, and upstream sees every client as the gateway.
 * Upstream must trust the gateway for it: Postfix `smtpd_authorized_xclient_hosts` /
 * `smtpd_authorized_xforward_hosts` (http://www.postfix.org/XCLIENT_README.html, XFORWARD_README).
 */
export type ClientIdentityMode = 'auto' | 'off';

export function parseClientIdentityMode(value: string | undefined): ClientIdentityMode {
  const v = (value ?? '').trim().toLowerCase();
  if (v === '' || v === 'auto') return 'auto';
  if (v === 'off') return 'off';
  throw new ConfigError(`SMTP_UPSTREAM_XCLIENT: expected "auto" or "off", got "${value}"`);
}

/** The attributes both XCLIENT and XFORWARD carry, in Postfix's spelling (not yet xtext-encoded). */
export interface ClientIdentity {
  ADDR: string;
  NAME: string;
  PROTO: 'SMTP' | 'ESMTP';
  HELO: string;
}

export function clientIdentity(session: SMTPServerSession): ClientIdentity {
  const addr = (session.remoteAddress ?? '').replace(/^::ffff:/i, '');
  // smtp-server writes an address without a PTR name as `[ip]`: Postfix's word for that is [UNAVAILABLE].
  const name = session.clientHostname && !session.clientHostname.startsWith('[') ? session.clientHostname : '[UNAVAILABLE]';
  return {
    ADDR: !addr ? '[UNAVAILABLE]' : isIPv6(addr) ? `IPV6:${addr}` : addr,
    NAME: name,
    PROTO: /^ESMTP/i.test(session.transmissionType ?? '') ? 'ESMTP' : 'SMTP',
    HELO: session.hostNameAppearsAs || '[UNAVAILABLE]',
  };
}

/** RFC 3461 xtext: `+`, `=`, controls, space and non-ASCII as `+HH`. */
export function xtext(value: string): string {
  return Buffer.from(value, 'utf8').reduce((out, b) => out + (b > 32 && b < 127 && b !== 0x2b && b !== 0x3d ? String.fromCharCode(b) : `+${b.toString(16).toUpperCase().padStart(2, '0')}`), '');
}

/** `ADDR=… NAME=… PROTO=… HELO=…`, only the attributes upstream listed in its EHLO keyword. */
export function identityCommand(verb: 'XCLIENT' | 'XFORWARD', id: ClientIdentity, offered: string): string {
  const names = new Set(offered.toUpperCase().split(/\s+/).filter(Boolean));
  const attrs = (['ADDR', 'NAME', 'PROTO', 'HELO'] as const).filter((a) => names.has(a)).map((a) => `${a}=${xtext(id[a]).slice(0, 255)}`);
  return attrs.length ? `${verb} ${attrs.join(' ')}` : '';
}

export type IdentityOutcome = 'xclient' | 'xforward' | 'none' | { refused: 'XCLIENT' | 'XFORWARD'; reply: SmtpReply };

/**
 * Before a transaction (outside one, as both extensions require): XCLIENT once per upstream
 * connection, then EHLO again as Postfix requires (it resets to the greeting stage and answers
 * 220); else XFORWARD before every MAIL (its attributes apply to one transaction). A refusal is
 * returned, not thrown: the message still goes, upstream just sees the gateway as the client.
 */
export async function announceClient(client: UpstreamSmtpClient, id: ClientIdentity, helloName: string, state: { xclientSent?: boolean }): Promise<IdentityOutcome> {
  if (state.xclientSent) return 'xclient';
  if (client.has('XCLIENT')) {
    const line = identityCommand('XCLIENT', id, client.capabilities.get('XCLIENT') ?? '');
    if (line) {
      const reply = await client.command(line);
      if (reply.code !== 220) return { refused: 'XCLIENT', reply };
      state.xclientSent = true;
      const hello = await client.hello(helloName);
      if (hello.code !== 250) return { refused: 'XCLIENT', reply: hello };
      return 'xclient';
    }
  }
  if (client.has('XFORWARD')) {
    const line = identityCommand('XFORWARD', id, client.capabilities.get('XFORWARD') ?? '');
    if (line) {
      const reply = await client.command(line);
      if (reply.code !== 250) return { refused: 'XFORWARD', reply };
      return 'xforward';
    }
  }
  return 'none';
}
