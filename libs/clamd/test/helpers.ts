import { readFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { createServer, type AddressInfo, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { after, before } from 'node:test';
import { CLAMAV_DEPLOY_DIR, DATABASE_PROBE, startClamd, type ClamdAddress, type RunningClamd, type StartClamdOptions } from '../src/index.js';

/** The EICAR test string, assembled at run time so no source file is itself "infected". */
export const EICAR = Buffer.from('X5O!P%@AP[4\\PZX54(P^)7CC)7}$' + 'EICAR-STANDARD-ANTIVIRUS-TEST-FILE!$H+H*', 'latin1');

/** The probe signature name of the project's database (deploy/clamav/mailwarden.probe.ndb). */
export const PROJECT_PROBE_NAME = readFileSync(join(CLAMAV_DEPLOY_DIR, 'mailwarden.probe.ndb'), 'utf8').split(':')[0] as string;

/** The identity (ScanResult.engine) of a clamd that runs the project's database, given its VERSION reply. */
export const projectEngine = (versionReply: string): string => `${versionReply}/${PROJECT_PROBE_NAME}`;

/** A fresh source per call (scan() may call open() more than once). */
export const bufferSource = (...chunks: Buffer[]) => async (): Promise<Readable> => Readable.from(chunks);

/**
 * Starts one real clamd in a temp dir for the enclosing test file (before/after hooks).
 * Call `get()` inside tests.
 */
export function useClamd(opts: Omit<StartClamdOptions, 'stateDir'> = {}): { get(): RunningClamd } {
  let clamd: RunningClamd | undefined;
  let dir: string | undefined;
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'mw-clamd-'));
    clamd = await startClamd({ ...opts, stateDir: dir });
  });
  after(async () => {
    await clamd?.stop();
    if (dir) await rm(dir, { recursive: true, force: true });
  });
  return {
    get(): RunningClamd {
      if (!clamd) throw new Error('clamd not started');
      return clamd;
    },
  };
}

/** A TCP server on 127.0.0.1:0 that hands each connection to `onSocket` (fault injection). */
export async function fakeServer(onSocket: (socket: Socket) => void): Promise<{ address: ClamdAddress & { kind: 'tcp' }; close(): Promise<void> }> {
  const sockets = new Set<Socket>();
  const server = createServer((socket) => {
    sockets.add(socket);
    socket.on('error', () => {});
    socket.on('close', () => sockets.delete(socket));
    onSocket(socket);
  });
  await new Promise<void>((res) => server.listen(0, '127.0.0.1', res));
  const port = (server.address() as AddressInfo).port;
  return {
    address: { kind: 'tcp', host: '127.0.0.1', port },
    close: async () => {
      for (const s of sockets) s.destroy();
      await new Promise<void>((res) => server.close(() => res()));
    },
  };
}

/**
 * A fake clamd that tells its identity like a real one — zVERSION answered with `version`, an
 * INSTREAM of DATABASE_PROBE with `probeReply` — and hands every other connection (with the bytes
 * read so far put back) to `onScan`, for fault injection in the scan itself.
 */
export async function fakeEngine(
  onScan: (socket: Socket) => void,
  opts: { version?: string; probeReply?: string } = {},
): Promise<{ address: ClamdAddress & { kind: 'tcp' }; close(): Promise<void>; asked: { version: number; probe: number } }> {
  const version = opts.version ?? 'ClamAV 1.4.6';
  const probeReply = opts.probeReply ?? 'stream: OK';
  const asked = { version: 0, probe: 0 };
  const server = await fakeServer((socket) => {
    let buf = Buffer.alloc(0);
    const onData = (d: Buffer): void => {
      buf = Buffer.concat([buf, d]);
      const nul = buf.indexOf(0);
      if (nul < 0) return;
      const command = buf.subarray(0, nul).toString('latin1');
      if (command === 'zVERSION') {
        asked.version++;
        socket.off('data', onData);
        socket.end(`${version}\0`);
        return;
      }
      if (command === 'zINSTREAM') {
        // Decide on the first chunk: the probe, or a real scan.
        if (buf.length < nul + 5) return;
        const len = buf.readUInt32BE(nul + 1);
        if (buf.length < nul + 5 + len) return;
        if (buf.subarray(nul + 5, nul + 5 + len).toString('latin1') === DATABASE_PROBE) {
          asked.probe++;
          socket.off('data', onData);
          socket.end(`${probeReply}\0`);
          return;
        }
      }
      socket.off('data', onData);
      // Put the bytes back; resume() flows them on the next tick, after onScan attached its
      // handlers (or paused the socket itself).
      socket.pause();
      socket.unshift(buf);
      socket.resume();
      onScan(socket);
    };
    socket.on('data', onData);
  });
  return { ...server, asked };
}
