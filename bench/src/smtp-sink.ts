/**
 * Child process: an SMTP server that accepts every message and throws it away, counting messages,
 * bytes and Mailwarden notices (a removed attachment is replaced by "<name>.removed.txt"), and
 * messages that still carry the bench's infected attachment (`filename="invoice.bin"`, see messages.ts):
 * those must never arrive, whichever gateway is in front.
 * Used as the gateway's upstream (Mailwarden's and the peers') and as the direct-to-sink baseline.
 */
import type { AddressInfo } from 'node:net';
import { SMTPServer } from 'smtp-server';
import { serveChild } from './child.js';

const MARKER = Buffer.from('.removed.txt');
// The infected attachment's own header (Mailwarden's notice is "invoice.bin.removed.txt" and its text
// quotes "invoice.bin" without `filename=`).
const INFECTED = Buffer.from('filename="invoice.bin"');
const OVERLAP = Math.max(MARKER.length, INFECTED.length) - 1;
let stats = { messages: 0, bytes: 0, notices: 0, infected: 0 };

const server = new SMTPServer({
  authOptional: true,
  disabledCommands: ['AUTH', 'STARTTLS'],
  hideSTARTTLS: true,
  // smtp-server looks up every client's address with dns.reverse (c-ares, not /etc/hosts) before
  // its greeting: with a slow or absent resolver a new connection waits seconds for its 220.
  // ClamSMTP opens one upstream connection per client connection, so it would pay for it.
  disableReverseLookup: true,
  logger: false,
  size: 0,
  socketTimeout: 10 * 60_000,
  onData(stream, _session, cb) {
    let tail = Buffer.alloc(0);
    let notices = 0;
    let infected = false;
    stream.on('data', (chunk: Buffer) => {
      stats.bytes += chunk.length;
      // Search across chunk boundaries with a small overlap (a marker is never counted twice:
      // the overlap is shorter than it).
      const hay = tail.length ? Buffer.concat([tail, chunk]) : chunk;
      for (let at = hay.indexOf(MARKER); at >= 0; at = hay.indexOf(MARKER, at + 1)) if (at + MARKER.length > tail.length) notices++;
      if (!infected) infected = hay.includes(INFECTED);
      tail = Buffer.from(hay.subarray(Math.max(0, hay.length - OVERLAP)));
    });
    stream.on('end', () => {
      stats.messages++;
      if (infected) stats.infected++;
      // The name is in Content-Type and Content-Disposition: two mentions per notice.
      stats.notices += Math.ceil(notices / 2);
      cb(null, 'discarded');
    });
  },
});
server.on('error', (err) => console.error(`smtp-sink: ${err.message}`));
server.listen(0, '127.0.0.1', () => {
  const { port } = server.server.address() as AddressInfo;
  serveChild(
    port,
    () => ({ ...stats }),
    () => {
      stats = { messages: 0, bytes: 0, notices: 0, infected: 0 };
    },
  );
});
