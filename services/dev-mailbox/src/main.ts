#!/usr/bin/env node
// dev-mailbox: the local upstream mail server of `npm start` (SMTP in, maildir out; Dovecot
// serves the maildirs over POP3). Wiring only; the logic is in dev-mailbox.ts and maildir.ts.
//
//   DEV_MAILBOX_SMTP_LISTEN  host:port of the SMTP listener      (default 127.0.0.1:2526)
//   DEV_MAILBOX_DIR          maildir root, <dir>/<localpart>/new/ (default .local/mail)
//   DEV_MAILBOX_REJECT       regexp of recipients refused at RCPT (default ^reject[^@]*(@|$), case-insensitive)
import { resolve } from 'node:path';
import { createLogger } from '@mailwarden/log';
import { DEFAULT_REJECT_PATTERN, startDevMailbox } from './dev-mailbox.js';

const log = createLogger('dev-mailbox');
const listen = process.env.DEV_MAILBOX_SMTP_LISTEN?.trim() || '127.0.0.1:2526';
const mailRoot = resolve(process.env.DEV_MAILBOX_DIR?.trim() || '.local/mail');
const rejectPattern = process.env.DEV_MAILBOX_REJECT?.trim() ? new RegExp(process.env.DEV_MAILBOX_REJECT.trim(), 'i') : DEFAULT_REJECT_PATTERN;

const mailbox = await startDevMailbox({ listen, mailRoot, rejectPattern, logger: log });
log.info({ event: 'ready', smtp: mailbox.address, mailRoot }, `dev mailbox listening on ${mailbox.address}, mail in ${mailRoot}`);

let stopping = false;
for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.once(signal, () => {
    if (stopping) return;
    stopping = true;
    log.info({ event: 'stopping', signal }, 'stopping');
    const force = setTimeout(() => process.exit(0), 5000);
    force.unref();
    void mailbox.stop().then(() => process.exit(0));
  });
}
