import { mkdtemp, rm } from 'node:fs/promises';
import { createServer, type AddressInfo, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { after, before } from 'node:test';
import { startClamd, type ClamdAddress, type RunningClamd, type StartClamdOptions } from '../src/index.js';

/** The EICAR test string, assembled at run time so no source file is itself "infected". */
export const EICAR = Buffer.from('X5O!P%@AP[4\\PZX54(P^)7CC)7}$' + 'EICAR-STANDARD-ANTIVIRUS-TEST-FILE!$H+H*', 'latin1');

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
