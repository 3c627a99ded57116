/** Just enough POP3 to log in and RETR one message, counting its bytes without keeping them. */
import { connect, type Socket } from 'node:net';

export async function pop3Retrieve(opts: { host: string; port: number; user: string; password: string; timeoutMs?: number }): Promise<{ bytes: number; status: string }> {
  const socket: Socket = await new Promise((resolve, reject) => {
    const s = connect({ host: opts.host, port: opts.port });
    s.once('connect', () => resolve(s));
    s.once('error', reject);
  });
  const timer = setTimeout(() => socket.destroy(new Error('POP3 deadline')), opts.timeoutMs ?? 300_000);
  let buf = '';
  let waiter: ((line: string) => void) | undefined;
  let body: { bytes: number; tail: string; done: (n: number) => void } | undefined;
  let failed: Error | undefined;
  const failures: ((e: Error) => void)[] = [];
  socket.on('error', (e) => {
    failed = e;
    failures.forEach((f) => f(e));
  });
  socket.on('close', () => {
    failed ??= new Error('POP3 connection closed');
    failures.forEach((f) => f(failed!));
  });
  const feed = (s: string): void => {
    if (waiter) {
      buf += s;
      const nl = buf.indexOf('\r\n');
      if (nl < 0) return;
      const l = buf.slice(0, nl);
      const rest = buf.slice(nl + 2);
      buf = '';
      const w = waiter;
      waiter = undefined;
      w(l);
      if (rest) feed(rest);
      return;
    }
    if (body) {
      body.bytes += s.length;
      const joined = body.tail + s;
      if (joined.endsWith('\r\n.\r\n')) {
        const b = body;
        body = undefined;
        b.done(b.bytes);
      } else body.tail = joined.slice(-5);
    }
  };
  socket.on('data', (d: Buffer) => feed(d.toString('latin1')));
  const line = (): Promise<string> =>
    new Promise((resolve, reject) => {
      if (failed) return reject(failed);
      failures.push(reject);
      waiter = resolve;
    });
  const cmd = async (c: string): Promise<string> => {
    const p = line();
    socket.write(`${c}\r\n`);
    const l = await p;
    if (!l.startsWith('+OK')) throw new Error(`POP3 ${c.split(' ')[0]}: ${l}`);
    return l;
  };
  try {
    const greet = await line();
    if (!greet.startsWith('+OK')) throw new Error(`POP3 greeting: ${greet}`);
    await cmd(`USER ${opts.user}`);
    await cmd(`PASS ${opts.password}`);
    const done = new Promise<number>((resolve, reject) => {
      failures.push(reject);
      body = { bytes: 0, tail: '\r\n', done: resolve };
    });
    const status = await cmd('RETR 1');
    const bytes = await done;
    await cmd('QUIT').catch(() => undefined);
    return { bytes, status };
  } finally {
    clearTimeout(timer);
    socket.destroy();
  }
}
