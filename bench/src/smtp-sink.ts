/**
 * Child process: an SMTP server that accepts every message and throws it away, counting messages,
 * bytes and Mailwarden notices (a removed attachment is replaced by "<name>.removed.txt").
 * Used as the gateway's upstream and as the direct-to-sink baseline.
 */
import type { AddressInfo } from 'node:net';
import { SMTPServer } from 'smtp-server';
import { serveChild } from './child.js';

const MARKER = Buffer.from('.removed.txt');
let stats = { messages: 0, bytes: 0, notices: 0 };

const server = new SMTPServer({
  authOptional: true,
  disabledCommands: ['AUTH', 'STARTTLS'],
  hideSTARTTLS: true,
  logger: false,
  size: 0,
  socketTimeout: 10 * 60_000,
  onData(stream, _session, cb) {
    let tail = Buffer.alloc(0);
    let notices = 0;
    stream.on('data', (chunk: Buffer) => {
      stats.bytes += chunk.length;
      // Search across chunk boundaries with a small overlap.
      const hay = tail.length ? Buffer.concat([tail, chunk]) : chunk;
      for (let at = hay.indexOf(MARKER); at >= 0; at = hay.indexOf(MARKER, at + 1)) notices++;
      tail = Buffer.from(hay.subarray(Math.max(0, hay.length - (MARKER.length - 1))));
    });
    stream.on('end', () => {
      stats.messages++;
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
      stats = { messages: 0, bytes: 0, notices: 0 };
    },
  );
});
