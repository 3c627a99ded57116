import type { SMTPServerDataStream } from 'smtp-server';
import { PermFailError, TempFailError, newRef, type MessageScanner, type ScanRequest, type StoredMessage } from '@mailwarden/pipeline';
import type { Logger } from '@mailwarden/log';
import { UpstreamError } from '@mailwarden/smtp-client';
import { SmtpReplyError, replyText, tempFail } from './smtp-reply.js';
import { guardedBody, readToEnd } from './data-guards.js';
import { ClientGoneError, clientAborted } from './client-gone.js';
import type { UpstreamLeg } from './upstream-leg.js';

export interface ScanAndDeliverDeps {
  scanner: MessageScanner;
  leg: UpstreamLeg;
  log: Logger;
  sessionId: string;
}

/**
 * Proxy mode's DATA: the message is stored (and scanned when the policy says so), then the stored
 * (possibly rebuilt) copy goes over the session's upstream leg. Returns the text of upstream's
 * 250; every failure becomes an SmtpReplyError with the client's reply (451 quoting the ref).
 */
export async function scanAndDeliver(stream: SMTPServerDataStream, req: ScanRequest, { scanner, leg, log, sessionId }: ScanAndDeliverDeps): Promise<string> {
  // Bare CR/LF become CRLF (never forwarded raw: SMTP smuggling); a NUL refuses the message.
  const { body, guard, limited, refusals } = guardedBody(stream);
  const storing = req.scan ? scanner.scan(req, body) : scanner.store(req, body);
  let stored: StoredMessage | undefined;
  try {
    stored = await Promise.race([storing, refusals, clientAborted(stream)]);
    if (!stored) throw new Error('unreachable');
    // The client left before it got a reply: it will send again, so this copy must not go out.
    if (leg.closed) throw new ClientGoneError('client left before the message was delivered');
    if (!leg.alive) throw new UpstreamError('upstream session lost before delivery');
    const reply = await leg.deliver(await stored.open());
    log.info(
      { event: 'smtp.delivered', ref: stored.ref, scanned: stored.scanned, removed: stored.removed.length, upstream: reply.code, size: stored.size, canonicalised: guard.changed },
      `message ${stored.ref} ${reply.code === 250 ? 'delivered' : 'refused by upstream'}`,
    );
    if (reply.code !== 250) throw SmtpReplyError.fromUpstream(reply);
    return replyText(reply) || 'OK';
  } catch (err) {
    if (!stored) {
      // Stop the scanner reading a message nobody will deliver; a copy it stores anyway is removed.
      limited.destroy();
      void storing.then((m) => m.discard().catch(() => undefined), () => undefined);
    }
    await readToEnd(stream);
    throw clientReply(err, stored, log, sessionId);
  } finally {
    void stored?.discard().catch(() => undefined);
  }
}

/** The client's reply for a DATA that did not end in upstream's 250, logged with its ref. */
function clientReply(err: unknown, stored: StoredMessage | undefined, log: Logger, sessionId: string): SmtpReplyError {
  if (err instanceof ClientGoneError) {
    const ref = stored?.ref ?? newRef();
    log.info({ event: 'smtp.client_aborted', ref, session: sessionId, err: err.message }, 'client left before its message was delivered; not delivered');
    return tempFail(ref, 'Connection closed before the message was delivered');
  }
  if (err instanceof SmtpReplyError) return err;
  if ((err as Error).name === 'NulByteError') return new SmtpReplyError(550, '5.6.0', 'Message contains a NUL byte; refused');
  if (err instanceof PermFailError) {
    log.warn({ event: 'smtp.rejected', ref: err.ref, err: err.message }, 'message refused by policy limits');
    return new SmtpReplyError(554, '5.6.0', `Message refused: ${err.message} (ref ${err.ref})`);
  }
  if (err instanceof TempFailError) {
    log.warn({ event: 'smtp.tempfail', ref: err.ref, err: err.message }, 'scan failed, temporary failure to client');
    return tempFail(err.ref);
  }
  const ref = stored?.ref ?? newRef();
  log.warn({ event: 'smtp.tempfail', ref, err: (err as Error).message }, 'delivery failed, temporary failure to client');
  return tempFail(ref, err instanceof UpstreamError ? 'Upstream mail server failed to take the message' : undefined);
}
