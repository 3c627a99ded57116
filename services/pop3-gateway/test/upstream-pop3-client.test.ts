import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type AddressInfo, type Socket } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import { UpstreamPop3Client } from '../src/upstream-pop3-client.js';
import { UpstreamError } from '../src/upstream-error.js';

/** A scripted server: `script` gets each command line and the socket. */
async function server(t: import('node:test').TestContext, greeting: string | null, script: (line: string, s: Socket) => void) {
  const held: Socket[] = [];
  const srv = createServer((s) => {
    held.push(s);
    s.on('error', () => undefined);
    if (greeting !== null) s.write(`${greeting}\r\n`);
    let buf = '';
    s.on('data', (c) => {
      buf += c.toString('latin1');
      let nl: number;
      while ((nl = buf.indexOf('\r\n')) >= 0) {
        const line = buf.slice(0, nl);
        buf = buf.slice(nl + 2);
        script(line, s);
      }
    });
  });
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
  t.after(() => {
    for (const s of held) s.destroy();
    srv.close();
  });
  return { host: '127.0.0.1', port: (srv.address() as AddressInfo).port, connectTimeoutMs: 1000, replyTimeoutMs: 300 };
}

test('greeting, single-line commands, listings, a body with the next reply in the same packet', async (t) => {
  const opts = await server(t, '+OK ready <1.2@x>', (line, s) => {
    if (line === 'LIST') s.write('+OK 2 messages\r\n1 10\r\n..2 20\r\n.\r\n');
    else if (line === 'RETR 1') s.write('+OK 9 octets\r\nA: b\r\n\r\n..x\r\n.\r\n');
    else if (line === 'NOOP') s.write('+OK\r\n');
    else s.write('-ERR what\r\n');
  });
  const { client, greeting } = await UpstreamPop3Client.connect(opts);
  t.after(() => client.close());
  assert.equal(greeting.line, '+OK ready <1.2@x>');
  assert.deepEqual(await client.command('FOO'), { ok: false, continuation: false, line: '-ERR what', text: 'what' });
  const { lines } = await client.listing('LIST');
  const got: string[] = [];
  for await (const l of lines!) got.push(l);
  assert.deepEqual(got, ['1 10', '.2 20']);
  const { reply, body } = await client.retrieve('RETR 1');
  assert.equal(reply.line, '+OK 9 octets');
  const chunks: Buffer[] = [];
  for await (const c of body!.stream) chunks.push(c as Buffer);
  await body!.done;
  assert.equal(Buffer.concat(chunks).toString(), 'A: b\r\n\r\n.x\r\n');
  assert.equal((await client.command('NOOP')).line, '+OK');
});

test('a body the consumer abandons is read to its end; the leg stays in step', async (t) => {
  const big = Buffer.alloc(2 * 1024 * 1024, 'a');
  const opts = await server(t, '+OK', (line, s) => {
    if (line === 'RETR 1') {
      s.write('+OK\r\n');
      for (let i = 0; i < big.length; i += 65536) s.write(big.subarray(i, i + 65536));
      s.write('\r\n.\r\n');
    } else s.write(`+OK ${line}\r\n`);
  });
  const { client } = await UpstreamPop3Client.connect(opts);
  t.after(() => client.close());
  const { body } = await client.retrieve('RETR 1');
  for await (const _ of body!.stream) break;
  await body!.done;
  assert.equal((await client.command('NOOP')).line, '+OK NOOP');
});

test('a slow consumer pauses upstream without tripping the silence deadline', async (t) => {
  const big = Buffer.alloc(4 * 1024 * 1024, 'b');
  const opts = await server(t, '+OK', (line, s) => {
    if (line === 'RETR 1') {
      s.write('+OK\r\n');
      s.write(big);
      s.write('\r\n.\r\n');
    }
  });
  const { client } = await UpstreamPop3Client.connect(opts);
  t.after(() => client.close());
  const { body } = await client.retrieve('RETR 1');
  let n = 0;
  for await (const c of body!.stream) {
    n += (c as Buffer).length;
    if (n < 200_000) await sleep(400); // longer than replyTimeoutMs, while we hold back
  }
  await body!.done;
  assert.equal(n, big.length + 2);
});

test('deadlines: no reply, silence in a body, refused connection', async (t) => {
  const opts = await server(t, '+OK', (line, s) => {
    if (line === 'RETR 1') s.write('+OK\r\npartial');
  });
  const { client } = await UpstreamPop3Client.connect(opts);
  await assert.rejects(client.command('NOOP'), UpstreamError);
  assert.equal(client.alive, false);

  const again = await UpstreamPop3Client.connect(opts);
  const { body } = await again.client.retrieve('RETR 1');
  await assert.rejects(async () => {
    for await (const _ of body!.stream);
  }, /sent nothing for 300 ms/);
  await assert.rejects(body!.done, UpstreamError);

  const closed = createServer();
  await new Promise<void>((r) => closed.listen(0, '127.0.0.1', r));
  const port = (closed.address() as AddressInfo).port;
  await new Promise<void>((r) => closed.close(() => r()));
  await assert.rejects(UpstreamPop3Client.connect({ ...opts, port }), UpstreamError);
});

test('refuses to send CR/LF/NUL and garbage replies end the leg', async (t) => {
  const opts = await server(t, '+OK', (_line, s) => s.write('HELLO\r\n'));
  const { client } = await UpstreamPop3Client.connect(opts);
  await assert.rejects(client.command('USER a\r\nDELE 1'), /CR, LF or NUL/);
  await assert.rejects(client.command('NOOP'), /malformed upstream reply/);
});

test('STLS: upstream’s refusal, or bytes after its +OK (response injection), fail the leg instead of going on in the clear', async (t) => {
  const refusing = await server(t, '+OK', (line, s) => {
    if (line === 'CAPA') s.write('+OK\r\nSTLS\r\n.\r\n');
    else if (line === 'STLS') s.write('-ERR not now\r\n');
  });
  const a = await UpstreamPop3Client.connect(refusing);
  await a.client.capabilities();
  assert.equal(a.client.has('STLS'), true);
  await assert.rejects(a.client.startTls({ verify: false }), /refused STLS: -ERR not now/);
  assert.equal(a.client.alive, false);

  const injecting = await server(t, '+OK', (line, s) => {
    if (line === 'STLS') s.write('+OK go ahead\r\n+OK injected\r\n');
  });
  const b = await UpstreamPop3Client.connect(injecting);
  await assert.rejects(b.client.startTls({ verify: false }), /sent data after STLS \+OK/);
  assert.equal(b.client.alive, false);
});
