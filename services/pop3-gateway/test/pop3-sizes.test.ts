// RFC 1939 5: LIST (and STAT) give each message's exact size. RETR sends the scanned copy, so the
// gateway learns those sizes before answering: scanned ahead (TOP), or remembered from an earlier
// session, within a budget per command. Real sockets, fake upstream, in-memory scanner and memory.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Writable } from 'node:stream';
import { pino } from 'pino';
import type { Logger } from '@mailwarden/log';
import { NOTICE } from './memory-message-scanner.js';
import { MemorySizeMemory } from './memory-size-memory.js';
import type { Pop3TestClient } from './pop3-test-client.js';
import { CLEAN, INFECTED, harness, message, waitUntil } from './proxy-harness.js';

const rebuilt = (m: Buffer): Buffer => Buffer.from(m.toString('latin1').replaceAll('INFECTED', NOTICE), 'latin1');
const INFECTED_TOO = message('infected too', 'INFECTED again\n');
/** Upstream's LIST counts it without the CRLF a POP3 server must add before the terminator (Dovecot does the same). */
const NO_FINAL_CRLF = Buffer.from('Subject: no final line end\r\n\r\nlast line', 'latin1');

/** `n size` pairs of a LIST listing. */
async function listSizes(c: Pop3TestClient): Promise<Map<number, number>> {
  const r = await c.multi('LIST');
  assert.match(r.status, /^\+OK/);
  return new Map(r.body!.toString().trim().split('\r\n').map((l) => l.split(' ').map(Number) as [number, number]));
}

/** The octets a client counts for RETR n: the lines with their CRLF, dot-stuffing undone, terminator left out. */
async function retrieved(c: Pop3TestClient, n: number): Promise<number> {
  const r = await c.multi(`RETR ${n}`);
  assert.match(r.status, /^\+OK \d+ octets$/);
  assert.equal(r.status, `+OK ${r.body!.length} octets`, 'the status line says what is sent');
  return r.body!.length;
}

function capture(): { log: Logger; events: Record<string, unknown>[] } {
  const events: Record<string, unknown>[] = [];
  const sink = new Writable({
    write(chunk: Buffer, _enc, cb) {
      for (const line of chunk.toString().split('\n')) if (line) events.push(JSON.parse(line) as Record<string, unknown>);
      cb();
    },
  });
  return { log: pino({ level: 'info' }, sink) as Logger, events };
}

test('LIST before any RETR: each size is what RETR then sends, and RETR is served without a second scan', async (t) => {
  const h = await harness(t, { messages: [CLEAN, INFECTED, NO_FINAL_CRLF] });
  const c = await h.connect();
  await c.login();
  const sizes = await listSizes(c);
  assert.deepEqual([...sizes], [
    [1, CLEAN.length],
    [2, rebuilt(INFECTED).length],
    [3, NO_FINAL_CRLF.length + 2],
  ]);
  assert.equal(h.scanner.scans.length, 3, 'scanned ahead');
  assert.equal(h.upstream.count('TOP'), 3, 'fetched with TOP: upstream marks nothing seen');
  assert.equal(h.upstream.count('RETR'), 0);
  for (const n of [1, 2, 3]) assert.equal(await retrieved(c, n), sizes.get(n), `message ${n}`);
  assert.equal(h.scanner.scans.length, 3, 'RETR is served from the copy scanned ahead');
  assert.equal(h.upstream.count('RETR'), 3, 'each RETR still reaches upstream (body dropped), which marks the message seen');
  const top = await c.multi('TOP 2 0');
  assert.match(top.body!.toString(), /Subject: infected\r\n\r\n$/);
  assert.equal(h.upstream.count('RETR'), 3);
  assert.equal(h.scanner.scans.length, 3);
});

test('LIST n and STAT before any RETR: delivered sizes; a second STAT asks upstream for nothing new', async (t) => {
  const h = await harness(t, { messages: [CLEAN, INFECTED, NO_FINAL_CRLF] });
  const c = await h.connect();
  await c.login();
  assert.equal(await c.command('LIST 2'), `+OK 2 ${rebuilt(INFECTED).length}`);
  assert.equal(h.scanner.scans.length, 1, 'only the message asked for');
  const total = CLEAN.length + rebuilt(INFECTED).length + NO_FINAL_CRLF.length + 2;
  assert.equal(await c.command('STAT'), `+OK 3 ${total}`);
  assert.equal(h.scanner.scans.length, 3);
  const lists = h.upstream.count('LIST');
  assert.equal(await c.command('STAT'), `+OK 3 ${total}`);
  assert.equal(h.upstream.count('LIST'), lists, 'the listing is kept for the session');
  assert.equal(h.scanner.scans.length, 3);
  let octets = 0;
  for (const n of [1, 2, 3]) octets += await retrieved(c, n);
  assert.equal(octets, total, 'STAT counts what RETR sends');
  assert.equal(h.scanner.scans.length, 3);
});

test('budget 0: upstream’s sizes, nothing fetched or scanned ahead', async (t) => {
  const h = await harness(t, { proxy: { sizeLookaheadMs: 0 } });
  const c = await h.connect();
  await c.login();
  assert.deepEqual([...(await listSizes(c))], [
    [1, CLEAN.length],
    [2, INFECTED.length],
  ]);
  assert.equal(await c.command('LIST 2'), `+OK 2 ${INFECTED.length}`);
  assert.equal(await c.command('STAT'), `+OK 2 ${CLEAN.length + INFECTED.length}`);
  assert.equal(h.scanner.scans.length, 0);
  for (const verb of ['TOP', 'RETR', 'UIDL', 'CAPA']) assert.equal(h.upstream.count(verb), 0, verb);
});

test('POP3 scanning off by policy: no look-ahead (RETR sends upstream’s bytes, so upstream’s sizes are exact)', async (t) => {
  const h = await harness(t);
  h.policy = { ...h.policy, antivirus: { ...h.policy.antivirus, pop3: false } };
  const c = await h.connect();
  await c.login();
  assert.equal(await c.command('STAT'), `+OK 2 ${CLEAN.length + INFECTED.length}`);
  assert.equal(h.scanner.scans.length, 0);
  assert.equal(h.upstream.count('TOP'), 0);
});

test('budget spent: the rest keep upstream’s size (pop3.sizes_estimated), the command answers in time', async (t) => {
  const { log, events } = capture();
  const h = await harness(t, { messages: [INFECTED, INFECTED_TOO], proxy: { sizeLookaheadMs: 300, log } });
  const c = await h.connect();
  await c.login();
  h.scanner.faults.push('hang');
  const started = Date.now();
  assert.deepEqual([...(await listSizes(c))], [
    [1, INFECTED.length],
    [2, INFECTED_TOO.length],
  ]);
  assert.ok(Date.now() - started < 3000, `took ${Date.now() - started} ms`);
  const estimated = events.find((e) => e.event === 'pop3.sizes_estimated');
  assert.ok(estimated, 'logged');
  assert.equal(estimated.estimated, 2);
  assert.equal(estimated.command, 'LIST');
  // The session goes on: message 1 is not tried again by LIST/STAT; message 2 is, with a new budget.
  assert.equal(await c.command('STAT'), `+OK 2 ${INFECTED.length + rebuilt(INFECTED_TOO).length}`);
  assert.equal(await retrieved(c, 1), rebuilt(INFECTED).length);
});

test('a scan failure during look-ahead keeps upstream’s size for that message only; RETR tries again', async (t) => {
  const h = await harness(t, { messages: [INFECTED, INFECTED_TOO] });
  const c = await h.connect();
  await c.login();
  h.scanner.faults.push('after-read');
  assert.deepEqual([...(await listSizes(c))], [
    [1, INFECTED.length],
    [2, rebuilt(INFECTED_TOO).length],
  ]);
  assert.equal(await c.command('STAT'), `+OK 2 ${INFECTED.length + rebuilt(INFECTED_TOO).length}`);
  assert.equal(h.scanner.scans.length, 2, 'the failed message is not scanned again by STAT');
  // RETR behaves as before: it tries again, and a failure is -ERR [SYS/TEMP].
  h.scanner.faults.push('after-read');
  assert.match(await c.command('RETR 1'), /^-ERR \[SYS\/TEMP\] /);
  assert.equal(await retrieved(c, 1), rebuilt(INFECTED).length);
  assert.equal(await c.command('LIST 1'), `+OK 1 ${rebuilt(INFECTED).length}`);
});

test('DELEted messages are skipped by the look-ahead; RSET brings them back with their delivered sizes', async (t) => {
  const h = await harness(t, { messages: [INFECTED, INFECTED_TOO, CLEAN] });
  const c = await h.connect();
  await c.login();
  assert.match(await c.command('DELE 1'), /^\+OK/);
  assert.equal(await c.command('STAT'), `+OK 2 ${rebuilt(INFECTED_TOO).length + CLEAN.length}`);
  assert.equal(h.scanner.scans.length, 2, 'the deleted message is not scanned');
  assert.deepEqual([...(await listSizes(c))], [
    [2, rebuilt(INFECTED_TOO).length],
    [3, CLEAN.length],
  ]);
  assert.equal(await c.command('LIST 1'), '-ERR There is no message');
  assert.equal(await c.command('RSET'), '+OK');
  assert.equal(await c.command('STAT'), `+OK 3 ${rebuilt(INFECTED).length + rebuilt(INFECTED_TOO).length + CLEAN.length}`);
  assert.equal(h.scanner.scans.length, 3);
  assert.deepEqual([...(await listSizes(c))], [
    [1, rebuilt(INFECTED).length],
    [2, rebuilt(INFECTED_TOO).length],
    [3, CLEAN.length],
  ]);
  assert.match(await c.command('DELE 2'), /^\+OK/);
  assert.equal(await c.command('STAT'), `+OK 2 ${rebuilt(INFECTED).length + CLEAN.length}`, 'a copy of a deleted message no longer counts');
});

test('size memory: a later session reports delivered sizes without scanning; RETR then scans and matches', async (t) => {
  const memory = new MemorySizeMemory();
  const h = await harness(t, { messages: [CLEAN, INFECTED], proxy: { sizeMemory: memory } });
  const first = await h.connect();
  await first.login();
  const sizes = await listSizes(first);
  assert.equal(h.scanner.scans.length, 2);
  await waitUntil('sizes remembered', () => memory.entries.size === 2);
  assert.equal(await first.command('QUIT'), '+OK Logging out.');

  const second = await h.connect();
  await second.login();
  const tops = h.upstream.count('TOP');
  assert.deepEqual(await listSizes(second), sizes);
  assert.equal(await second.command('STAT'), `+OK 2 ${CLEAN.length + rebuilt(INFECTED).length}`);
  assert.equal(await second.command('LIST 2'), `+OK 2 ${rebuilt(INFECTED).length}`);
  assert.equal(h.scanner.scans.length, 2, 'nothing scanned: the sizes were remembered');
  assert.equal(h.upstream.count('TOP'), tops);
  assert.equal(await retrieved(second, 2), sizes.get(2));
  assert.equal(h.scanner.scans.length, 3, 'RETR scans (the memory holds sizes, not messages)');

  // Another policy shapes the delivered copy otherwise: remembered sizes do not apply.
  h.policy = { ...h.policy, subjectPrefix: { enabled: true, text: '[CHECKED]' } };
  const third = await h.connect();
  await third.login();
  await listSizes(third);
  assert.equal(h.scanner.scans.length, 5);
});

test('size memory failing or hanging: the command still answers with scanned sizes', async (t) => {
  const memory = new MemorySizeMemory();
  const h = await harness(t, { proxy: { sizeMemory: memory } });
  memory.fault = 'throw';
  const c = await h.connect();
  await c.login();
  assert.equal(await c.command('LIST 2'), `+OK 2 ${rebuilt(INFECTED).length}`);
  memory.fault = 'hang';
  const started = Date.now();
  assert.equal(await c.command('STAT'), `+OK 2 ${CLEAN.length + rebuilt(INFECTED).length}`);
  assert.ok(Date.now() - started < 3000, `took ${Date.now() - started} ms (one memory deadline)`);
  assert.equal(h.scanner.scans.length, 2);
});

test('size memory needs UIDL: without it nothing is remembered, sizes are still scanned ahead', async (t) => {
  const memory = new MemorySizeMemory();
  const h = await harness(t, { proxy: { sizeMemory: memory }, fake: { refuse: ['UIDL'] } });
  const c = await h.connect();
  await c.login();
  assert.equal(await c.command('STAT'), `+OK 2 ${CLEAN.length + rebuilt(INFECTED).length}`);
  assert.equal(memory.gets + memory.puts, 0);
});

test('upstream without TOP: the look-ahead uses RETR, and the client’s RETR needs no second one', async (t) => {
  const h = await harness(t, { fake: { capabilities: ['UIDL', 'USER'] } });
  const c = await h.connect();
  await c.login();
  await listSizes(c);
  assert.equal(h.upstream.count('TOP'), 0);
  assert.equal(h.upstream.count('RETR'), 2);
  await retrieved(c, 2);
  assert.equal(h.upstream.count('RETR'), 2);
  assert.equal(h.scanner.scans.length, 2);
});
