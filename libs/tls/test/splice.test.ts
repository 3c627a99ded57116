import assert from 'node:assert/strict';
import { once } from 'node:events';
import { createServer, connect, type Socket } from 'node:net';
import { describe, it } from 'node:test';
import { splice } from '../src/splice.js';

/** A connected pair of sockets over loopback: [the far end, the near end]. */
async function pair(): Promise<[Socket, Socket]> {
  const server = createServer();
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const { port } = server.address() as { port: number };
  const accepted = once(server, 'connection');
  const near = connect(port, '127.0.0.1');
  const [far] = (await accepted) as [Socket];
  server.close();
  await once(near, 'connect');
  return [far, near];
}

describe('splice (TLS passthrough)', () => {
  it('relays bytes both ways, and one side closing closes the other', async () => {
    const [client, clientSide] = await pair();
    const [upstream, upstreamSide] = await pair();
    const done = splice(clientSide, upstreamSide, 60_000);
    client.write('hello upstream');
    assert.equal(((await once(upstream, 'data')) as [Buffer])[0].toString(), 'hello upstream');
    upstream.write('hello client');
    assert.equal(((await once(client, 'data')) as [Buffer])[0].toString(), 'hello client');
    upstream.destroy();
    await done;
    assert.ok(clientSide.destroyed && upstreamSide.destroyed);
  });

  it('a client that goes silent ends both sides after the idle time (no hang)', async () => {
    const [client, clientSide] = await pair();
    const [upstream, upstreamSide] = await pair();
    const closedUpstream = once(upstream, 'close');
    await splice(clientSide, upstreamSide, 150);
    await closedUpstream;
    client.destroy();
  });
});
