/**
 * Lines from a socket for the gateways' upstream clients (SMTP replies, POP3 status lines and
 * listings): a maximum line length, a deadline per line, and a clean hand-over of the bytes that
 * follow (a POP3 body). Protocol-free: the clients parse the lines themselves. The rest of the
 * upstream socket plumbing (connect and STARTTLS/STLS with deadlines, the passthrough splice) is
 * in libs/tls.
 */
export * from './line-reader.js';
