/**
 * POP3 inputs: mutated messages placed in the mailbox (Dovecot's maildir, exact bytes) and
 * retrieved through the gateway, and protocol attacks on raw sockets.
 */
import { Readable } from 'node:stream';
import { runOracle } from './oracle.js';
import { RawConn } from './raw.js';
import type { Rng } from './rng.js';
import { pop3Outcome, refOf, type Finding, type FuzzContext, type InputResult, type Outcome } from './types.js';

type Partial = Omit<InputResult, 'index' | 'category' | 'ms'>;

const PASSWORD = 'password';

interface Session {
  c: RawConn;
  replies: string[];
  last: string | undefined;
  /** Sends a command, reads its status line and, for multi-line answers, the body. */
  cmd(line: string | Buffer, opts?: { multi?: boolean; timeoutMs?: number }): Promise<{ status?: string; body?: Buffer }>;
}

const isMulti = (cmd: string): boolean => /^(CAPA|LIST|UIDL)\s*$/i.test(cmd) || /^(RETR|TOP)\s/i.test(cmd);

async function session(ctx: FuzzContext, user?: string): Promise<Session> {
  const c = await RawConn.open(ctx.pop3.host, ctx.pop3.port);
  const s: Session = {
    c,
    replies: [],
    last: undefined,
    async cmd(line, opts = {}) {
      await c.write(typeof line === 'string' ? line + '\r\n' : Buffer.concat([line, Buffer.from('\r\n')]));
      const status = await c.line(opts.timeoutMs ?? 15_000);
      if (status === undefined) return {};
      s.replies.push(status.slice(0, 160));
      s.last = status;
      const multi = opts.multi ?? (typeof line === 'string' && isMulti(line));
      if (!status.startsWith('+OK') || !multi) return { status };
      return { status, body: await c.pop3Multiline(opts.timeoutMs ?? 60_000) };
    },
  };
  const greeting = await c.line(5000);
  if (greeting !== undefined) {
    s.replies.push(greeting.slice(0, 160));
    s.last = greeting;
  }
  if (user) {
    await s.cmd(`USER ${user}`);
    await s.cmd(`PASS ${PASSWORD}`);
  }
  return s;
}

const finish = async (s: Session, findings: Finding[] = []): Promise<Partial> => {
  if (!s.c.closed) await s.cmd('QUIT', { timeoutMs: 3000 });
  s.c.destroy();
  const outcome: Outcome = s.last === undefined ? 'closed' : pop3Outcome(s.last);
  return { kind: '', outcome, replies: s.replies.slice(-6), findings, input: s.c.sentBytes() };
};

export async function placeMessage(ctx: FuzzContext, user: string, msg: Buffer): Promise<void> {
  await ctx.maildir.deliver(Readable.from([msg]), [user]);
}

/** RETR of a mutated message placed in the mailbox: `-ERR [SYS/TEMP]` is a finding, a delivered EICAR seed goes to the oracle. */
export async function retrieveMessage(ctx: FuzzContext, rng: Rng, user: string, msg: Buffer, eicar: boolean): Promise<Partial> {
  await placeMessage(ctx, user, msg);
  const s = await session(ctx, user);
  const findings: Finding[] = [];
  const r = await s.cmd('RETR 1', { timeoutMs: 90_000 });
  let outcome: Outcome = r.status === undefined ? (s.c.closed ? 'closed' : 'timeout') : pop3Outcome(r.status);
  if (r.status?.startsWith('+OK') && !r.body) outcome = s.c.closed ? 'closed' : 'timeout';
  if (outcome === '4xx') findings.push({ kind: 'tempfail', text: `RETR of a message in the mailbox answered ${r.status}`, ref: refOf(r.status ?? '') });
  if (outcome === 'timeout') findings.push({ kind: 'hang', text: 'RETR: no complete answer within 90 s' });
  if (outcome === 'closed') findings.push({ kind: 'closed', text: `RETR: connection closed (${r.status ?? 'no status'})` });
  let oracle: InputResult['oracle'];
  if (outcome === '250' && r.body && eicar) {
    const o = await runOracle(r.body);
    oracle = o.verdict;
    if (o.verdict === 'recovered') findings.push({ kind: 'recoverable-payload', text: `EICAR recoverable from what POP3 RETR returned (${r.body.length} bytes): ${o.via}` });
  }
  if (outcome === '250' && rng.chance(0.3)) {
    const t = await s.cmd(`TOP 1 ${rng.pick([0, 5, 1000000])}`, { timeoutMs: 30_000 });
    if (t.status && pop3Outcome(t.status) === '4xx') findings.push({ kind: 'tempfail', text: `TOP after RETR answered ${t.status}`, ref: refOf(t.status) });
  }
  const rest = await finish(s, findings);
  return { ...rest, outcome, oracle, input: msg };
}

export type Pop3Attack = (ctx: FuzzContext, rng: Rng, user: string) => Promise<Partial>;

const SMALL = (subject: string): Buffer =>
  Buffer.from(`From: sender@example.org\r\nTo: user@example.test\r\nSubject: ${subject}\r\nMIME-Version: 1.0\r\n\r\n.leading dot line\r\nhello\r\n`, 'latin1');

export const POP3_ATTACKS: Record<string, Pop3Attack> = {
  async 'garbage-commands'(ctx, rng, user) {
    if (rng.chance(0.5)) await placeMessage(ctx, user, SMALL('garbage'));
    const s = await session(ctx, rng.chance(0.5) ? user : undefined);
    const n = rng.int(1, 20);
    for (let i = 0; i < n && !s.c.closed; i++) {
      const line = rng.chance(0.5) ? rng.bytes(rng.int(1, 300)) : Buffer.from(rng.text(rng.int(1, 60), 'ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789 \t\x00\x7f\xff-+.'), 'latin1');
      await s.cmd(line, { multi: false, timeoutMs: 5000 });
      s.c.drain();
    }
    if (!s.c.closed) await s.cmd('NOOP', { timeoutMs: 5000 });
    return finish(s);
  },

  async 'huge-lines'(ctx, rng, user) {
    const s = await session(ctx, rng.chance(0.5) ? user : undefined);
    const size = rng.pick([300, 10_240, 65_536, 1_048_576]);
    const filler = 'x'.repeat(size);
    await s.cmd(rng.pick([`USER ${filler}`, `PASS ${filler}`, filler, `LIST ${filler}`, `APOP ${filler} ${filler}`, `AUTH PLAIN ${filler}`]), { multi: false, timeoutMs: 15_000 });
    s.c.drain();
    if (!s.c.closed) await s.cmd('CAPA', { timeoutMs: 5000 });
    return finish(s);
  },

  async 'user-pass-flood'(ctx, rng, user) {
    const s = await session(ctx);
    const n = rng.int(20, 200);
    const pipelined = rng.chance(0.5);
    const lines: string[] = [];
    // Dovecot (upstream) doubles its delay after each failed login from an address, up to 15 s: at
    // most 3 wrong passwords per input; the rest of the flood is USER after USER and right passwords.
    let wrong = 0;
    for (let i = 0; i < n; i++) {
      const bad = wrong < 3 && rng.chance(0.05);
      if (bad) wrong++;
      lines.push(`USER ${rng.chance(0.8) ? user : rng.text(rng.int(1, 40))}`);
      if (bad || rng.chance(0.2)) lines.push(`PASS ${bad ? rng.text(rng.int(1, 40)) : PASSWORD}`);
    }
    if (pipelined) {
      await s.c.write(lines.map((l) => l + '\r\n').join(''));
      for (let i = 0; i < lines.length && !s.c.closed; i++) {
        const l = await s.c.line(20_000);
        if (l === undefined) break;
        s.last = l;
      }
      s.replies.push(`… ${lines.length} pipelined USER/PASS lines, last answer ${s.last?.slice(0, 80)}`);
    } else {
      for (const l of lines) if (!s.c.closed) await s.cmd(l, { timeoutMs: 20_000 });
      s.replies.splice(1, Math.max(0, s.replies.length - 4), `… ${lines.length} USER/PASS lines …`);
    }
    return finish(s);
  },

  async 'retr-nonexistent'(ctx, rng, user) {
    if (rng.chance(0.5)) await placeMessage(ctx, user, SMALL('one'));
    const s = await session(ctx, user);
    for (const c of ['RETR 0', 'RETR 99999', 'RETR -1', 'RETR abc', 'RETR 1 2', 'RETR 18446744073709551617', 'DELE 99999', 'LIST 99999', 'UIDL 0', 'RETR', 'RETR 2'].filter(() => rng.chance(0.6))) {
      if (s.c.closed) break;
      await s.cmd(c, { timeoutMs: 30_000 });
    }
    return finish(s);
  },

  async 'top-huge'(ctx, rng, user) {
    await placeMessage(ctx, user, SMALL('top'));
    const s = await session(ctx, user);
    for (const c of ['TOP 1 99999999999999999999', 'TOP 1 -1', 'TOP 1 abc', 'TOP 1', 'TOP 99 1', 'TOP 1 4294967296', 'TOP 1 2147483648', 'TOP 0 0', 'TOP 1 0 0'].filter(() => rng.chance(0.6))) {
      if (s.c.closed) break;
      await s.cmd(c, { timeoutMs: 30_000 });
    }
    return finish(s);
  },

  async pipelined(ctx, rng, user) {
    await placeMessage(ctx, user, SMALL('pipelined'));
    const s = await session(ctx);
    const pool = ['STAT', 'LIST', 'UIDL', 'RETR 1', 'TOP 1 0', 'NOOP', 'RSET', 'GARBAGE', 'LIST 1', 'CAPA', 'RETR 7', 'DELE 9'];
    const cmds = [`USER ${user}`, `PASS ${PASSWORD}`, ...Array.from({ length: rng.int(3, 30) }, () => rng.pick(pool)), 'QUIT'];
    await s.c.write(cmds.map((c) => c + '\r\n').join(''));
    const findings: Finding[] = [];
    // Read the answers in order (multi-line ones to their dot).
    for (const c of cmds) {
      const st = await s.c.line(30_000);
      if (st === undefined) break;
      s.last = st;
      s.replies.push(`${c.split(' ')[0]} → ${st.slice(0, 80)}`);
      if (pop3Outcome(st) === '4xx') findings.push({ kind: 'tempfail', text: `pipelined ${c} answered ${st}`, ref: refOf(st) });
      if (st.startsWith('+OK') && isMulti(c)) await s.c.pop3Multiline(30_000);
    }
    await s.c.waitClosed(5000);
    s.c.destroy();
    return { kind: '', outcome: s.last === undefined ? 'closed' : pop3Outcome(s.last), replies: s.replies.slice(-6), findings, input: s.c.sentBytes() };
  },

  async 'half-close'(ctx, rng, user) {
    await placeMessage(ctx, user, SMALL('half'));
    const s = await session(ctx, user);
    await s.c.write(rng.pick(['RETR 1\r\n', 'RET', 'TOP 1 1\r\n', 'LIST\r\nUIDL\r\nRETR 1\r\n', 'DELE 1\r\nQUI']));
    s.c.end();
    await s.c.waitClosed(10_000);
    s.c.destroy();
    return { kind: '', outcome: 'closed', replies: s.replies.slice(-4), findings: [], input: s.c.sentBytes() };
  },

  async 'wrong-state'(ctx, rng, user) {
    const s = await session(ctx);
    const seq = rng.pick([
      ['RETR 1', 'STAT', 'LIST', 'DELE 1', `PASS ${PASSWORD}`, `USER ${user}`, `PASS ${PASSWORD}`, `USER ${user}`, 'STAT'],
      ['APOP user 0123456789abcdef0123456789abcdef', 'AUTH', 'AUTH PLAIN', '=', '*', 'AUTH GARBAGE'],
      [`AUTH PLAIN ${Buffer.from(`\0${user}\0${PASSWORD}`).toString('base64')}`, 'STAT', 'AUTH PLAIN x'],
      ['STLS', 'STLS'],
      ['UIDL', 'TOP 1 1', 'RSET', 'NOOP', 'QUIT'],
    ]);
    for (const c of seq) {
      if (s.c.closed) break;
      const r = await s.cmd(c, { timeoutMs: 10_000 });
      if (c === 'STLS' && r.status?.startsWith('+OK')) {
        await s.c.write(rng.bytes(rng.int(1, 3000)));
        await s.c.waitClosed(10_000);
      }
    }
    return finish(s);
  },

  async slowloris(ctx, rng, user) {
    const s = await session(ctx);
    const findings: Finding[] = [];
    const trickle = s.c.trickle(`USER ${user}\r\nPASS ${PASSWORD}\r\nSTAT\r\n`, 1000, rng.int(3000, 6000));
    const probe = await ctx.probePop3();
    if (probe) findings.push({ kind: 'probe', text: `during POP3 slowloris: ${probe}` });
    await trickle;
    s.c.destroy();
    return { kind: '', outcome: s.c.closed && s.replies.length <= 1 ? 'closed' : pop3Outcome(s.last), replies: s.replies.slice(-4), findings, input: s.c.sentBytes() };
  },

  async 'reset-mid-retr'(ctx, rng, user) {
    await placeMessage(ctx, user, Buffer.concat([SMALL('big'), Buffer.from('y'.repeat(rng.int(10_000, 2_000_000)) + '\r\n')]));
    const s = await session(ctx, user);
    await s.c.write('RETR 1\r\n');
    await new Promise((r) => setTimeout(r, rng.int(0, 500)));
    s.c.socket.resetAndDestroy();
    return { kind: '', outcome: 'closed', replies: s.replies.slice(-4), findings: [], input: s.c.sentBytes() };
  },
};

export const POP3_ATTACK_WEIGHTS: [string, number][] = [
  ['garbage-commands', 14],
  ['huge-lines', 12],
  ['user-pass-flood', 8],
  ['retr-nonexistent', 10],
  ['top-huge', 10],
  ['pipelined', 12],
  ['half-close', 10],
  ['wrong-state', 10],
  ['slowloris', 3],
  ['reset-mid-retr', 6],
];
