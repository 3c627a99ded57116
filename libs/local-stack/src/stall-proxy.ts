/**
 * A TCP proxy for fault drills: put it in front of a real server (the local S3, say) and tell it
 * to stall — it keeps accepting connections but stops forwarding a single byte, in either
 * direction, the way a wedged storage node or a black-holing network does — or to slow down.
 *
 * A connection frozen by a stall stays frozen for good (its client must give up on it);
 * `resume()` only lets connections made afterwards through, as when a client reconnects to a
 * server that came back.
 */
import { createServer, connect, type AddressInfo, type Server, type Socket } from 'node:net';

export interface StallProxy {
  host: string;
  port: number;
  /** `http://host:port`: for an HTTP target such as S3_ENDPOINT. */
  endpoint: string;
  /** Bytes forwarded client → target and target → client since start. */
  readonly bytesUp: number;
  readonly bytesDown: number;
  /** Connections accepted so far. */
  readonly accepted: number;
  readonly stalled: boolean;
  /** Stop forwarding now, on every open connection and on those accepted from now on. */
  stall(): void;
  /**
   * Stall once this many more bytes went up (client → target) or down (target → client),
   * counted from this call; the chunk that crosses the mark is cut at the mark.
   */
  stallAfter(limit: { up?: number; down?: number }): void;
  /** New connections are forwarded again (frozen ones stay frozen). */
  resume(): void;
  /** Forward at most this many bytes per second in each direction; undefined for full speed. */
  throttle(bytesPerSecond: number | undefined): void;
  close(): Promise<void>;
}

interface Pair {
  client: Socket;
  target?: Socket;
  frozen: boolean;
}

export async function startStallProxy(target: { host: string; port: number }, listenHost = '127.0.0.1'): Promise<StallProxy> {
  const pairs = new Set<Pair>();
  let bytesUp = 0;
  let bytesDown = 0;
  let accepted = 0;
  let stalled = false;
  let rate: number | undefined;
  let trip: { up?: number; down?: number } | undefined;

  const freeze = (p: Pair): void => {
    p.frozen = true;
    p.client.pause();
    p.target?.pause();
  };
  const stall = (): void => {
    stalled = true;
    trip = undefined;
    for (const p of pairs) freeze(p);
  };

  const forward = (p: Pair, from: Socket, to: Socket, dir: 'up' | 'down'): void => {
    from.on('data', (chunk: Buffer) => {
      if (p.frozen) return;
      const limit = trip?.[dir];
      const count = dir === 'up' ? bytesUp : bytesDown;
      if (limit !== undefined && count + chunk.length >= limit) {
        chunk = chunk.subarray(0, Math.max(0, limit - count));
        if (dir === 'up') bytesUp += chunk.length;
        else bytesDown += chunk.length;
        if (chunk.length) to.write(chunk);
        stall();
        return;
      }
      if (dir === 'up') bytesUp += chunk.length;
      else bytesDown += chunk.length;
      const flowing = to.write(chunk);
      if (rate !== undefined) {
        from.pause();
        setTimeout(() => !p.frozen && from.resume(), (chunk.length / rate) * 1000).unref();
      } else if (!flowing) {
        from.pause();
        to.once('drain', () => !p.frozen && from.resume());
      }
    });
  };

  const server: Server = createServer((client) => {
    accepted++;
    const p: Pair = { client, frozen: false };
    pairs.add(p);
    const end = (): void => {
      pairs.delete(p);
      client.destroy();
      p.target?.destroy();
    };
    client.on('error', end);
    client.on('close', end);
    if (stalled) {
      freeze(p);
      return;
    }
    const t = connect(target.port, target.host);
    p.target = t;
    t.on('error', end);
    t.on('close', end);
    forward(p, client, t, 'up');
    forward(p, t, client, 'down');
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, listenHost, resolve);
  });
  const port = (server.address() as AddressInfo).port;

  return {
    host: listenHost,
    port,
    endpoint: `http://${listenHost}:${port}`,
    get bytesUp() {
      return bytesUp;
    },
    get bytesDown() {
      return bytesDown;
    },
    get accepted() {
      return accepted;
    },
    get stalled() {
      return stalled;
    },
    stall,
    stallAfter(limit) {
      trip = {
        ...(limit.up !== undefined ? { up: bytesUp + limit.up } : {}),
        ...(limit.down !== undefined ? { down: bytesDown + limit.down } : {}),
      };
    },
    resume() {
      stalled = false;
      trip = undefined;
    },
    throttle(bytesPerSecond) {
      rate = bytesPerSecond;
    },
    close: () =>
      new Promise<void>((resolve) => {
        for (const p of pairs) {
          p.client.destroy();
          p.target?.destroy();
        }
        server.close(() => resolve());
      }),
  };
}
