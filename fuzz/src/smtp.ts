/**
 * SMTP inputs: mutated messages sent well framed (dot-stuffed, CRLF.CRLF) with the benchmark's
 * client, and protocol attacks on raw sockets.
 */
import { SmtpConnection, SmtpError } from '../../bench/dist/smtp-load.js';
import { dotStuff } from './mutate.js';
import { deliveredTo, runOracle } from './oracle.js';
import { RawConn } from './raw.js';
import type { Rng } from './rng.js';
import { refOf, smtpOutcome, type Finding, type FuzzContext, type InputResult, type Outcome } from './types.js';

type Partial = Omit<InputResult, 'index' | 'category' | 'ms'>;

const SMALL = (subject: string, to: string): string =>
  `From: sender@example.org\r\nTo: ${to}\r\nSubject: ${subject}\r\nMIME-Version: 1.0\r\nContent-Type: text/plain\r\n\r\nHello from the fuzzer.\r\n`;

/** A mutated message, well framed: any 4xx is a finding; 250 with an EICAR seed goes to the oracle. */
export async function sendMessage(ctx: FuzzContext, user: string, msg: Buffer, eicar: boolean, deadlineMs: number): Promise<Partial & { outcome: Outcome }> {
  const findings: Finding[] = [];
  const replies: string[] = [];
  let conn: SmtpConnection | undefined;
  let outcome: Outcome;
  try {
    conn = await SmtpConnection.open(ctx.smtp.host, ctx.smtp.port, deadlineMs);
    const reply = await conn.send('sender@example.org', [`${user}@example.test`], dotStuff(msg));
    replies.push(`${reply.code} ${reply.text}`.slice(0, 200));
    outcome = smtpOutcome(reply.code);
    if (outcome === '4xx') findings.push({ kind: 'tempfail', text: `well-framed message answered ${reply.code} ${reply.text}`, ref: refOf(reply.text) });
  } catch (err) {
    const m = (err as Error).message;
    replies.push(m);
    outcome = err instanceof SmtpError && m.startsWith('no reply') ? 'timeout' : 'closed';
    findings.push({ kind: outcome === 'timeout' ? 'hang' : 'closed', text: `well-framed message: ${m}` });
  } finally {
    await conn?.quit().catch(() => undefined);
  }
  let oracle: InputResult['oracle'];
  if (outcome === '250' && eicar) {
    for (const d of await deliveredTo(ctx.mailRoot, user)) {
      const r = await runOracle(d);
      if (oracle !== 'recovered') oracle = r.verdict;
      if (r.verdict === 'recovered') findings.push({ kind: 'recoverable-payload', text: `EICAR recoverable from the delivered message (${d.length} bytes): ${r.via}`, ref: refOf(replies[0] ?? '') });
    }
  }
  return { kind: '', outcome, replies, findings, oracle };
}

interface Session {
  c: RawConn;
  replies: string[];
  last: number | undefined;
  /** Sends a line (CRLF added) and reads one reply. */
  cmd(line: string | Buffer, timeoutMs?: number): Promise<number | undefined>;
  read(timeoutMs?: number): Promise<number | undefined>;
}

async function session(ctx: FuzzContext, ehlo = true): Promise<Session> {
  const c = await RawConn.open(ctx.smtp.host, ctx.smtp.port);
  const s: Session = {
    c,
    replies: [],
    last: undefined,
    async read(timeoutMs = 10_000) {
      const r = await c.smtpReply(timeoutMs);
      if (r) {
        s.replies.push(`${r.code} ${r.text}`.slice(0, 160));
        s.last = r.code;
      }
      return r?.code;
    },
    async cmd(line, timeoutMs) {
      await c.write(typeof line === 'string' ? line + '\r\n' : Buffer.concat([line, Buffer.from('\r\n')]));
      return s.read(timeoutMs);
    },
  };
  await s.read(5000);
  if (ehlo) await s.cmd('EHLO fuzz.example');
  return s;
}

const finish = async (s: Session, extra: Finding[] = []): Promise<Partial> => {
  if (!s.c.closed) await s.cmd('QUIT', 3000);
  const closedByServer = s.c.closed;
  s.c.destroy();
  const outcome: Outcome = s.last === undefined || (closedByServer && s.replies.length === 0) ? 'closed' : smtpOutcome(s.last);
  return { kind: '', outcome, replies: s.replies.slice(-6), findings: extra, input: s.c.sentBytes() };
};

/** A transaction with a small well-framed message once DATA got 354: a 4xx final reply is a finding. */
async function smallMessage(s: Session, to: string, findings: Finding[]): Promise<number | undefined> {
  await s.c.write(dotStuff(Buffer.from(SMALL('fuzz', to))) + '.\r\n');
  const code = await s.read(60_000);
  if (code !== undefined && code >= 400 && code < 500) findings.push({ kind: 'tempfail', text: `well-framed message after protocol abuse answered ${s.replies.at(-1)}`, ref: refOf(s.replies.at(-1) ?? '') });
  return code;
}

export type SmtpAttack = (ctx: FuzzContext, rng: Rng, user: string) => Promise<Partial>;

export const SMTP_ATTACKS: Record<string, SmtpAttack> = {
  async 'garbage-lines'(ctx, rng) {
    const s = await session(ctx, rng.chance(0.5));
    const n = rng.int(1, 20);
    for (let i = 0; i < n && !s.c.closed; i++) {
      const line = rng.chance(0.5) ? rng.bytes(rng.int(1, 300)) : Buffer.from(rng.text(rng.int(1, 80), 'ABCDEFGHIJKLMNOPQRSTUVWXYZ:<>@. \t\x00\x7f\xff'), 'latin1');
      await s.cmd(line, 3000);
    }
    if (!s.c.closed) await s.cmd('EHLO after.garbage');
    return finish(s);
  },

  async 'long-command'(ctx, rng) {
    const s = await session(ctx);
    const size = rng.pick([1000, 10_240, 10_240, 65_536, 1_048_576]);
    const filler = 'x'.repeat(size);
    const line = rng.pick([`EHLO ${filler}`, `MAIL FROM:<${filler}@example.org>`, `NOOP ${filler}`, `RCPT TO:<${filler}@example.test>`, `VRFY ${filler}`, filler]);
    if (line.startsWith('RCPT')) await s.cmd('MAIL FROM:<a@example.org>');
    await s.cmd(line, 15_000);
    if (!s.c.closed) await s.cmd('NOOP');
    return finish(s);
  },

  async 'many-rcpts'(ctx, rng, user) {
    const s = await session(ctx);
    const findings: Finding[] = [];
    await s.cmd('MAIL FROM:<sender@example.org>');
    const n = rng.pick([1000, 1000, 2000]);
    const unique = rng.chance(0.3);
    let ok = 0;
    for (let i = 0; i < n && !s.c.closed; i += 100) {
      const batch = Array.from({ length: Math.min(100, n - i) }, (_, k) => `RCPT TO:<${unique ? `${user}r${i + k}` : user}@example.test>\r\n`);
      await s.c.write(batch.join(''));
      for (let k = 0; k < batch.length; k++) {
        const code = await s.read(30_000);
        if (code === undefined) break;
        if (code === 250) ok++;
      }
    }
    s.replies.splice(1, Math.max(0, s.replies.length - 4), `… ${ok}/${n} RCPT accepted …`);
    if (ok && !s.c.closed && (await s.cmd('DATA')) === 354) await smallMessage(s, `${user}@example.test`, findings);
    return finish(s, findings);
  },

  async 'out-of-order'(ctx, rng, user) {
    const s = await session(ctx, rng.chance(0.7));
    const findings: Finding[] = [];
    const pool = ['DATA', `RCPT TO:<${user}@example.test>`, 'MAIL FROM:<sender@example.org>', 'RSET', 'BDAT 10 LAST', '.', 'Subject: not a command', 'QUIT', 'HELO again', 'EHLO again', 'NOOP', 'MAIL FROM:<>', 'RCPT TO:<>', 'VRFY root', 'EXPN list', 'HELP', 'TURN', 'ETRN example.test', 'XCLIENT ADDR=1.2.3.4'];
    const n = rng.int(3, 15);
    for (let i = 0; i < n && !s.c.closed; i++) {
      const cmd = rng.pick(pool);
      if (cmd === 'QUIT') continue;
      const code = await s.cmd(cmd, 10_000);
      if (code === 354) await smallMessage(s, `${user}@example.test`, findings);
    }
    return finish(s, findings);
  },

  async 'pipelined-burst'(ctx, rng, user) {
    const s = await session(ctx);
    const findings: Finding[] = [];
    const n = rng.int(1, 5);
    const parts: string[] = [];
    const expect: number[] = [];
    for (let t = 0; t < n; t++) {
      if (rng.chance(0.2)) parts.push(rng.pick(['NOOP\r\n', 'RSET\r\n', 'GARBAGE\r\n', 'RCPT TO:<x@example.test>\r\n']));
      parts.push('MAIL FROM:<sender@example.org>\r\n', `RCPT TO:<${user}t${t}@example.test>\r\n`, 'DATA\r\n', dotStuff(Buffer.from(SMALL(`burst ${t}`, `${user}t${t}@example.test`))).toString('latin1') + '.\r\n');
      expect.push(t);
    }
    parts.push('QUIT\r\n');
    await s.c.write(parts.join(''));
    // Read everything until the server closes (QUIT) or the deadline.
    const end = Date.now() + 60_000;
    while (!s.c.closed && Date.now() < end) if ((await s.read(Math.max(1, end - Date.now()))) === undefined) break;
    const accepted = s.replies.filter((r) => /^250 .*queued as/i.test(r)).length;
    let delivered = 0;
    for (const t of expect) delivered += (await deliveredTo(ctx.mailRoot, `${user}t${t}`)).length;
    const temp = s.replies.filter((r) => /^4\d\d/.test(r));
    for (const r of temp) findings.push({ kind: 'tempfail', text: `pipelined transaction answered ${r}`, ref: refOf(r) });
    if (delivered < accepted) findings.push({ kind: 'lost-message', text: `${accepted} messages answered 250 after DATA, ${delivered} delivered` });
    s.replies.splice(0, Math.max(0, s.replies.length - 8));
    const r = await finish(s, findings);
    return { ...r, outcome: temp.length ? '4xx' : r.outcome };
  },

  async slowloris(ctx, rng, user) {
    const s = await session(ctx, false);
    const findings: Finding[] = [];
    const inData = rng.chance(0.4);
    if (inData) {
      await s.cmd('EHLO slow.example');
      await s.cmd('MAIL FROM:<sender@example.org>');
      await s.cmd(`RCPT TO:<${user}@example.test>`);
      await s.cmd('DATA');
    }
    const text = inData ? 'Subject: slow\r\n\r\nvery slow body\r\n' : 'EHLO slow.example\r\n';
    // A byte a second for at most 6 s, with a probe from another connection in the middle.
    const trickle = s.c.trickle(text, 1000, 6000);
    const probe = await ctx.probeSmtp();
    if (probe) findings.push({ kind: 'probe', text: `during slowloris: ${probe}` });
    await trickle;
    s.c.destroy();
    await new Promise((r) => setTimeout(r, 300));
    if (inData && (await deliveredTo(ctx.mailRoot, user)).length) findings.push({ kind: 'partial-delivery', text: 'an unfinished (slowloris) message was delivered' });
    return { kind: '', outcome: s.c.closed && !s.replies.length ? 'closed' : smtpOutcome(s.last), replies: s.replies.slice(-4), findings, input: s.c.sentBytes() };
  },

  async 'half-close-mid-data'(ctx, rng, user) {
    const s = await session(ctx);
    const findings: Finding[] = [];
    await s.cmd('MAIL FROM:<sender@example.org>');
    await s.cmd(`RCPT TO:<${user}@example.test>`);
    if ((await s.cmd('DATA')) === 354) {
      const msg = SMALL('half closed', `${user}@example.test`) + 'x'.repeat(rng.int(0, 200_000)) + '\r\n';
      const cut = rng.pick([msg.length, msg.length - 2, rng.int(0, msg.length), msg.length + 3]);
      // msg.length + 3: the message with "\r\n." but no final CRLF.
      await s.c.write(cut > msg.length ? msg + '\r\n.' : msg.slice(0, cut));
      s.c.end();
      await s.read(5000);
      await s.c.waitClosed(5000);
      await new Promise((r) => setTimeout(r, 1000));
      if ((await deliveredTo(ctx.mailRoot, user)).length) findings.push({ kind: 'partial-delivery', text: 'a message whose DATA was cut by a half-close (no final dot) was delivered' });
    }
    s.c.destroy();
    return { kind: '', outcome: s.c.closed ? 'closed' : smtpOutcome(s.last), replies: s.replies.slice(-4), findings, input: s.c.sentBytes() };
  },

  async bdat(ctx, rng, user) {
    const s = await session(ctx);
    await s.cmd('MAIL FROM:<sender@example.org>');
    await s.cmd(`RCPT TO:<${user}@example.test>`);
    const body = SMALL('bdat', `${user}@example.test`);
    const form = rng.pick([`BDAT ${body.length} LAST\r\n${body}`, `BDAT 99999999999999999999\r\n${body}`, `BDAT -1 LAST\r\n`, `BDAT ${body.length}\r\n${body}BDAT 0 LAST\r\n`, 'BDAT\r\n']);
    await s.c.write(form);
    await s.read(5000);
    if (!s.c.closed) await s.cmd('NOOP', 5000);
    return finish(s);
  },

  async 'starttls-garbage'(ctx, rng) {
    const s = await session(ctx);
    const code = await s.cmd(rng.pick(['STARTTLS', 'STARTTLS garbage', 'STARTTLS\x00', 'starttls']));
    if (code === 220) {
      await s.c.write(rng.chance(0.5) ? rng.bytes(rng.int(1, 5000)) : Buffer.concat([Buffer.from([0x16, 0x03, 0x01, 0xff, 0xff, 0x01]), rng.bytes(200)]));
      await s.c.waitClosed(10_000);
    } else {
      await s.c.write(rng.bytes(rng.int(1, 2000)));
      await s.cmd('NOOP', 5000);
    }
    return finish(s);
  },

  async auth(ctx, rng) {
    const s = await session(ctx);
    const steps = rng.pick([
      ['AUTH PLAIN ' + Buffer.from('\0user\0password').toString('base64')],
      ['AUTH LOGIN', Buffer.from('user').toString('base64'), Buffer.from('password').toString('base64')],
      ['AUTH CRAM-MD5', 'garbage'],
      ['AUTH', 'AUTH GARBAGE', 'AUTH PLAIN ====='],
      ['AUTH PLAIN ' + 'A'.repeat(10_240)],
      ['AUTH XOAUTH2 ' + Buffer.from('user=a\x01auth=Bearer x\x01\x01').toString('base64'), '*'],
    ]);
    for (const st of steps) if (!s.c.closed) await s.cmd(st, 5000);
    return finish(s);
  },

  async 'nul-in-commands'(ctx, rng, user) {
    const s = await session(ctx, false);
    for (const l of rng.pick([
      ['EHLO a\x00b'],
      ['EHLO ok', 'MAIL FROM:<a\x00b@example.org>'],
      ['EHLO ok', 'MAIL FROM:<sender@example.org>', `RCPT TO:<${user}\x00@example.test>`],
      ['EHLO ok', 'MAIL FROM:<sender@example.org> SIZE=\x00', `RCPT TO:<${user}@example.test>\r\nRCPT TO:<x\r@example.test>`],
      ['\x00\x00\x00\x00', 'EHLO ok'],
    ]))
      if (!s.c.closed) await s.cmd(l, 5000);
    return finish(s);
  },

  async 'reset-mid-command'(ctx, rng, user) {
    const s = await session(ctx);
    await s.cmd('MAIL FROM:<sender@example.org>');
    await s.cmd(`RCPT TO:<${user}@example.test>`);
    if (rng.chance(0.5) && (await s.cmd('DATA')) === 354) await s.c.write('Subject: reset\r\n\r\nhalf a mess');
    else await s.c.write('RCPT TO:<half');
    s.c.socket.resetAndDestroy();
    await new Promise((r) => setTimeout(r, 500));
    const findings: Finding[] = (await deliveredTo(ctx.mailRoot, user)).length ? [{ kind: 'partial-delivery', text: 'a message cut by a connection reset was delivered' }] : [];
    return { kind: '', outcome: 'closed', replies: s.replies.slice(-4), findings, input: s.c.sentBytes() };
  },

  async 'connection-flood'(ctx, rng) {
    const n = rng.int(20, 100);
    const conns = await Promise.all(Array.from({ length: n }, () => RawConn.open(ctx.smtp.host, ctx.smtp.port).catch(() => undefined)));
    const greeted = await Promise.all(conns.map((c) => c?.smtpReply(10_000)));
    const findings: Finding[] = [];
    const probe = await ctx.probeSmtp();
    if (probe) findings.push({ kind: 'probe', text: `with ${n} idle connections open: ${probe}` });
    for (const c of conns) {
      if (rng.chance(0.5)) c?.destroy();
      else c?.socket.resetAndDestroy();
    }
    const codes = greeted.map((g) => g?.code ?? 0);
    const ok = codes.filter((c) => c === 220).length;
    return { kind: '', outcome: ok === n ? '250' : codes.some((c) => c >= 400 && c < 500) ? '4xx' : 'closed', replies: [`${ok}/${n} greeted 220`], findings };
  },
};

export const SMTP_ATTACK_WEIGHTS: [string, number][] = [
  ['garbage-lines', 12],
  ['long-command', 10],
  ['many-rcpts', 4],
  ['out-of-order', 14],
  ['pipelined-burst', 10],
  ['slowloris', 3],
  ['half-close-mid-data', 8],
  ['bdat', 6],
  ['starttls-garbage', 6],
  ['auth', 6],
  ['nul-in-commands', 8],
  ['reset-mid-command', 8],
  ['connection-flood', 3],
];
