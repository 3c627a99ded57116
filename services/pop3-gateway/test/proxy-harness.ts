/**
 * The proxy with a fake upstream (fake-pop3-server.ts) and an in-memory scanner, on real sockets:
 * what most unit tests of the gateway start from.
 */
import { type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { DEFAULT_POLICY, type Policy } from '@mailwarden/contracts';
import { createLogger } from '@mailwarden/log';
import { Pop3Proxy, type Pop3ProxyOptions } from '../src/pop3-proxy.js';
import { FakePop3Server, type FakePop3Options } from './fake-pop3-server.js';
import { MemoryMessageScanner } from './memory-message-scanner.js';
import { Pop3TestClient } from './pop3-test-client.js';

export const log = createLogger('pop3-test', process.env.TEST_LOG_LEVEL ?? 'silent');

export const message = (subject: string, body: string): Buffer =>
  Buffer.from(`From: a@example.org\r\nTo: alice@example.test\r\nSubject: ${subject}\r\n\r\n${body.replace(/\r?\n/g, '\r\n')}`, 'latin1');

export const CLEAN = message('clean', 'Hello\n.starts with a dot\n..two dots\n.\nend\n');
export const INFECTED = message('infected', 'line 1\nline 2 INFECTED payload\nline 3\n');

export interface Harness {
  upstream: FakePop3Server;
  scanner: MemoryMessageScanner;
  proxy: Pop3Proxy;
  port: number;
  policy: Policy;
  connect(): Promise<Pop3TestClient>;
}

export async function harness(
  t: TestContext,
  opts: { messages?: Buffer[]; fake?: Partial<FakePop3Options>; proxy?: Partial<Pop3ProxyOptions> } = {},
): Promise<Harness> {
  const upstream = await FakePop3Server.start({ messages: opts.messages ?? [CLEAN, INFECTED], ...opts.fake });
  const scanner = new MemoryMessageScanner();
  const h = { policy: structuredClone(DEFAULT_POLICY) } as Harness;
  const proxy = new Pop3Proxy({ upstream: upstream.address, scanner, policy: () => h.policy, log, ...opts.proxy });
  const { port } = await proxy.listen(0, '127.0.0.1');
  const clients: Pop3TestClient[] = [];
  t.after(async () => {
    for (const c of clients) c.close();
    await proxy.close(1000);
    await upstream.stop();
  });
  return Object.assign(h, {
    upstream,
    scanner,
    proxy,
    port,
    async connect() {
      const { client, greeting } = await Pop3TestClient.connect(port);
      assert.match(greeting, /^\+OK/);
      clients.push(client);
      return client;
    },
  });
}

export const waitUntil = async (what: string, probe: () => boolean, ms = 5000): Promise<void> => {
  const until = Date.now() + ms;
  while (!probe()) {
    if (Date.now() > until) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
};
