/**
 * Small process and network helpers shared by the local-stack components: spawn a daemon
 * with its output captured (and tee'd to a log file), wait for a line or a TCP greeting
 * with a deadline, stop with SIGTERM then SIGKILL.
 */
import { spawn, type ChildProcess, type SpawnOptions } from 'node:child_process';
import { createWriteStream, existsSync, mkdirSync, type WriteStream } from 'node:fs';
import { connect } from 'node:net';
import { dirname } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';

export class LocalStackError extends Error {
  override name = 'LocalStackError';
}

/** Keeps the last `limit` characters of a process's output for error messages. */
class OutputTail {
  private text = '';
  constructor(private readonly limit = 16_384) {}
  push(chunk: string): void {
    this.text += chunk;
    if (this.text.length > this.limit * 2) this.text = this.text.slice(-this.limit);
  }
  toString(): string {
    return this.text.slice(-this.limit);
  }
}

export interface DaemonOptions extends Pick<SpawnOptions, 'cwd' | 'env'> {
  /** Human name for messages ("nats-server", "dovecot", …). */
  name: string;
  /** Output (stdout and stderr) is appended here. */
  logFile?: string;
  /** Keep stdin as an open pipe (the child can exit when it closes: parent-death detection). */
  stdinPipe?: boolean;
  /**
   * Own process group: a terminal's Ctrl-C reaches only us, and we stop the children in order
   * (`npm start`). They are still SIGKILLed when this process exits.
   */
  detached?: boolean;
  /**
   * SIGTERM the daemon when this process dies, however it dies (SIGKILL, a test runner's
   * timeout): Linux's parent-death signal, set with util-linux's `setpriv --pdeathsig`.
   * Default true where /usr/bin/setpriv exists.
   */
  dieWithParent?: boolean;
}

const SETPRIV = '/usr/bin/setpriv';
const haveSetpriv = process.platform === 'linux' && existsSync(SETPRIV);

export interface Daemon {
  readonly name: string;
  readonly child: ChildProcess;
  readonly pid: number;
  /** Resolves with the exit code (null when killed by a signal). */
  readonly exited: Promise<number | null>;
  /** True once the process has exited. */
  hasExited(): boolean;
  /** The last few KB of output. */
  output(): string;
  /** Calls `fn` for every complete output line (stdout and stderr), including past ones. */
  onLine(fn: (line: string) => void): () => void;
  /** Sends `signal` (default SIGTERM), SIGKILL after `graceMs`; resolves when exited. Idempotent. */
  stop(signal?: NodeJS.Signals, graceMs?: number): Promise<void>;
}

const live = new Set<ChildProcess>();
let exitHookInstalled = false;

/** Whatever happens to this process, do not leave daemons behind. */
function installExitHook(): void {
  if (exitHookInstalled) return;
  exitHookInstalled = true;
  process.on('exit', () => {
    for (const c of live) {
      try {
        c.kill('SIGKILL');
      } catch {
        // already gone
      }
    }
  });
}

export function spawnDaemon(command: string, args: readonly string[], opts: DaemonOptions): Daemon {
  installExitHook();
  let log: WriteStream | undefined;
  if (opts.logFile) {
    mkdirSync(dirname(opts.logFile), { recursive: true });
    log = createWriteStream(opts.logFile, { flags: 'a' });
    log.on('error', () => undefined);
  }
  const [cmd, argv] =
    (opts.dieWithParent ?? true) && haveSetpriv
      ? [SETPRIV, ['--pdeathsig', 'TERM', '--', command, ...args]]
      : [command, [...args]];
  const child = spawn(cmd, argv, {
    cwd: opts.cwd,
    env: opts.env,
    stdio: [opts.stdinPipe ? 'pipe' : 'ignore', 'pipe', 'pipe'],
    detached: opts.detached ?? false,
  });
  live.add(child);
  const tail = new OutputTail();
  const lines: string[] = [];
  const listeners = new Set<(line: string) => void>();
  let spawnError: Error | undefined;
  let done = false;

  const exited = new Promise<number | null>((resolve) => {
    child.once('error', (err) => {
      spawnError = err;
      tail.push(`\n[${opts.name}: ${err.message}]\n`);
      if (child.pid === undefined) {
        done = true;
        live.delete(child);
        resolve(null);
      }
    });
    child.once('exit', (code) => {
      done = true;
      live.delete(child);
      resolve(code);
    });
  });
  void exited.then(() => log?.end());

  // Always consume both pipes, so a chatty daemon never blocks on a full pipe.
  for (const stream of [child.stdout, child.stderr]) {
    if (!stream) continue;
    stream.setEncoding('utf8');
    let partial = '';
    stream.on('data', (chunk: string) => {
      tail.push(chunk);
      log?.write(chunk);
      partial += chunk;
      const parts = partial.split('\n');
      partial = parts.pop() ?? '';
      for (const line of parts) {
        if (lines.length < 200) lines.push(line);
        for (const fn of listeners) fn(line);
      }
    });
  }

  let stopping: Promise<void> | undefined;
  return {
    name: opts.name,
    child,
    pid: child.pid ?? -1,
    exited,
    hasExited: () => done,
    output: () => tail.toString(),
    onLine(fn) {
      for (const l of lines) fn(l);
      listeners.add(fn);
      return () => listeners.delete(fn);
    },
    stop(signal: NodeJS.Signals = 'SIGTERM', graceMs = 10_000) {
      if (done) return Promise.resolve();
      stopping ??= (async () => {
        if (spawnError && child.pid === undefined) return;
        child.kill(signal);
        const t = setTimeout(() => child.kill('SIGKILL'), graceMs);
        await exited;
        clearTimeout(t);
      })();
      return stopping;
    },
  };
}

/**
 * Resolves with the first output line's match: `pattern.exec(line)` for a RegExp, or the first
 * non-null/undefined result of a function. Rejects (with the output tail) if the daemon exits
 * first or `timeoutMs` passes.
 */
export function waitForLine(daemon: Daemon, pattern: RegExp, timeoutMs: number): Promise<RegExpExecArray>;
export function waitForLine<T>(daemon: Daemon, match: (line: string) => T | null | undefined, timeoutMs: number): Promise<T>;
export function waitForLine<T>(
  daemon: Daemon,
  pattern: RegExp | ((line: string) => T | null | undefined),
  timeoutMs: number,
): Promise<T | RegExpExecArray> {
  const match = typeof pattern === 'function' ? pattern : (line: string) => pattern.exec(line);
  return new Promise((resolve, reject) => {
    let settled = false;
    let off: () => void = () => undefined;
    const settle = (fn: () => void): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      off();
      fn();
    };
    const timer = setTimeout(
      () => settle(() => reject(new LocalStackError(`${daemon.name}: no line matching ${String(pattern)} within ${timeoutMs} ms\n--- output ---\n${daemon.output()}`))),
      timeoutMs,
    );
    off = daemon.onLine((line) => {
      const m = match(line);
      if (m !== null && m !== undefined) settle(() => resolve(m));
    });
    if (settled) off();
    void daemon.exited.then((code) =>
      settle(() => reject(new LocalStackError(`${daemon.name} exited (code ${code}) before it was ready\n--- output ---\n${daemon.output()}`))),
    );
  });
}

/** One implementation of "ask the OS for a free port", shared with the clamd launcher. */
export { freePort } from '@mailwarden/clamd';

/**
 * Connects to host:port and resolves with the first line the server sends (a greeting such as
 * `+OK …`, `220 …` or NATS's `INFO {…}`), or null when nothing answers within `timeoutMs`.
 */
export function readGreeting(host: string, port: number, timeoutMs = 1000): Promise<string | null> {
  return new Promise((resolve) => {
    const sock = connect({ host, port });
    let buf = '';
    const finish = (v: string | null): void => {
      clearTimeout(timer);
      sock.destroy();
      resolve(v);
    };
    const timer = setTimeout(() => finish(null), timeoutMs);
    sock.setEncoding('utf8');
    sock.on('data', (d: string) => {
      buf += d;
      const nl = buf.indexOf('\n');
      if (nl >= 0) finish(buf.slice(0, nl).replace(/\r$/, ''));
    });
    sock.on('error', () => finish(null));
    sock.on('close', () => finish(buf || null));
  });
}

/** True when something accepts TCP connections on host:port. */
export function isListening(host: string, port: number, timeoutMs = 1000): Promise<boolean> {
  return new Promise((resolve) => {
    const sock = connect({ host, port });
    const timer = setTimeout(() => {
      sock.destroy();
      resolve(false);
    }, timeoutMs);
    sock.once('connect', () => {
      clearTimeout(timer);
      sock.end();
      resolve(true);
    });
    sock.once('error', () => {
      clearTimeout(timer);
      resolve(false);
    });
  });
}

/** Polls `probe` every `intervalMs` until it returns true, the daemon exits, or the deadline. */
export async function waitUntil(
  what: string,
  probe: () => Promise<boolean>,
  opts: { timeoutMs: number; intervalMs?: number; daemon?: Daemon },
): Promise<void> {
  const deadline = Date.now() + opts.timeoutMs;
  for (;;) {
    if (opts.daemon?.hasExited()) {
      throw new LocalStackError(`${opts.daemon.name} exited before ${what}\n--- output ---\n${opts.daemon.output()}`);
    }
    if (await probe()) return;
    if (Date.now() > deadline) {
      throw new LocalStackError(`timed out after ${opts.timeoutMs} ms waiting for ${what}` + (opts.daemon ? `\n--- output ---\n${opts.daemon.output()}` : ''));
    }
    await sleep(opts.intervalMs ?? 50);
  }
}

export function formatHostPort(host: string, port: number): string {
  return host.includes(':') ? `[${host}]:${port}` : `${host}:${port}`;
}

export function isLoopback(host: string): boolean {
  return host === 'localhost' || host === '::1' || host === '[::1]' || /^127\./.test(host);
}
