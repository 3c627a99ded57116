/**
 * A fake clamd on 127.0.0.1:0 speaking the z-protocol (zVERSION, zPING, zINSTREAM), to count
 * scans and inject answers: a verdict chosen from the content, an ERROR, no answer at all, or
 * a VERSION / database probe answer that changes. Real clamd is in libs/clamd's tests and in
 * scan-cache-engines.test.ts; here only the count matters.
 */
import { createServer, type AddressInfo, type Socket } from 'node:net';
import { DATABASE_PROBE, type ClamdAddress } from '@mailwarden/clamd';

export type FakeReply = 'OK' | 'ERROR' | 'HANG' | { found: string };

export interface FakeClamd {
  address: ClamdAddress & { kind: 'tcp' };
  /** INSTREAM scans answered or left hanging (the database probe not counted). */
  scans: number;
  /** Database probes answered (INSTREAM of DATABASE_PROBE). */
  probes: number;
  /** PINGs answered. */
  pings: number;
  /** VERSION reply without NUL; `undefined` makes VERSION fail (connection closed). */
  version: string | undefined;
  /** The probe signature name (answered "FOUND"); `undefined`: OK (a database without the probe). */
  probeName: string | undefined;
  /** Chooses the reply for one scanned content. Default: OK. */
  reply: (content: Buffer) => FakeReply;
  close(): Promise<void>;
}

export async function startFakeClamd(): Promise<FakeClamd> {
  const sockets = new Set<Socket>();
  const fake: FakeClamd = {
    address: { kind: 'tcp', host: '127.0.0.1', port: 0 },
    scans: 0,
    probes: 0,
    pings: 0,
    version: 'ClamAV 1.4.6',
    probeName: undefined,
    reply: () => 'OK',
    close: async () => {
      for (const s of sockets) s.destroy();
      await new Promise<void>((res) => server.close(() => res()));
    },
  };
  const server = createServer((socket) => {
    sockets.add(socket);
    socket.on('error', () => {});
    socket.on('close', () => sockets.delete(socket));
    let buf = Buffer.alloc(0);
    let command: string | undefined;
    const body: Buffer[] = [];
    socket.on('data', (d: Buffer) => {
      buf = Buffer.concat([buf, d]);
      if (command === undefined) {
        const nul = buf.indexOf(0);
        if (nul < 0) return;
        command = buf.subarray(0, nul).toString('latin1');
        buf = buf.subarray(nul + 1);
        if (command === 'zVERSION') {
          if (fake.version === undefined) socket.destroy();
          else socket.end(`${fake.version}\0`);
          return;
        }
        if (command === 'zPING') {
          fake.pings++;
          socket.end('PONG\0');
          return;
        }
        if (command !== 'zINSTREAM') {
          socket.end('UNKNOWN COMMAND\0');
          return;
        }
      }
      // INSTREAM chunks: <uint32 length><bytes>, ended by a zero length.
      while (buf.length >= 4) {
        const len = buf.readUInt32BE(0);
        if (buf.length < 4 + len) return;
        if (len === 0) {
          const content = Buffer.concat(body);
          if (content.toString('latin1') === DATABASE_PROBE) {
            fake.probes++;
            socket.end(fake.probeName === undefined ? 'stream: OK\0' : `stream: ${fake.probeName}.UNOFFICIAL FOUND\0`);
            return;
          }
          fake.scans++;
          const r = fake.reply(content);
          if (r === 'HANG') return;
          if (r === 'OK') socket.end('stream: OK\0');
          else if (r === 'ERROR') socket.end('Can not allocate memory ERROR\0');
          else socket.end(`stream: ${r.found} FOUND\0`);
          buf = Buffer.alloc(0);
          return;
        }
        body.push(Buffer.from(buf.subarray(4, 4 + len)));
        buf = buf.subarray(4 + len);
      }
    });
  });
  await new Promise<void>((res) => server.listen(0, '127.0.0.1', res));
  fake.address.port = (server.address() as AddressInfo).port;
  return fake;
}
