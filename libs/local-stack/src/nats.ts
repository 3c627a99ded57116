/**
 * A private nats-server with JetStream: `nats-server -js -sd <dir> -a 127.0.0.1 -p <port>`.
 */
import { mkdir } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { LocalStackError, formatHostPort, isListening, isLoopback, readGreeting, spawnDaemon, waitUntil, waitForLine } from './daemon.js';

export interface StartNatsOptions {
  /** JetStream store in `<stateDir>/nats/`, log in `<stateDir>/logs/nats.log`. */
  stateDir: string;
  /** 0 (default) lets nats-server pick a free port. */
  port?: number;
  host?: string;
  /** Default `nats-server` from PATH (apt installs /usr/sbin/nats-server). */
  binary?: string;
  readyTimeoutMs?: number;
  /** Run in its own process group (see DaemonOptions.detached). Default false. */
  detached?: boolean;
}

export interface RunningNats {
  /** `nats://host:port` */
  url: string;
  host: string;
  port: number;
  /** undefined when an already running server was reused. */
  pid: number | undefined;
  /** True when ensureNats found a server already answering and did not start one. */
  reused: boolean;
  /** Stops the server we started (a reused one is left alone). Idempotent. */
  stop(): Promise<void>;
}

export async function startNats(opts: StartNatsOptions): Promise<RunningNats> {
  const stateDir = resolve(opts.stateDir);
  const host = opts.host ?? '127.0.0.1';
  const storeDir = join(stateDir, 'nats');
  await mkdir(storeDir, { recursive: true });
  const timeoutMs = opts.readyTimeoutMs ?? 15_000;
  const daemon = spawnDaemon(
    opts.binary ?? 'nats-server',
    // -p -1: nats-server picks a random free port and logs it (no race with another process).
    ['-js', '-sd', storeDir, '-a', host, '-p', String(opts.port || -1)],
    { name: 'nats-server', logFile: join(stateDir, 'logs', 'nats.log'), detached: opts.detached },
  );
  try {
    const listening = waitForLine(daemon, /Listening for client connections on (.+):(\d+)\s*$/, timeoutMs);
    const ready = waitForLine(daemon, /Server is ready/, timeoutMs);
    const [, , portText] = await listening;
    await ready;
    const port = Number(portText);
    await waitUntil(`nats-server to accept connections on ${host}:${port}`, () => isListening(host, port), {
      timeoutMs,
      daemon,
    });
    return {
      url: `nats://${formatHostPort(host, port)}`,
      host,
      port,
      pid: daemon.pid,
      reused: false,
      stop: () => daemon.stop('SIGTERM', 5000),
    };
  } catch (err) {
    await daemon.stop('SIGKILL');
    throw err;
  }
}

/** Parses the first URL of a NATS_URL value (`nats://host:port`, `host:port`, comma lists). */
export function parseNatsUrl(url: string): { host: string; port: number } {
  const first = url.split(',')[0]!.trim();
  const u = new URL(first.includes('://') ? first : `nats://${first}`);
  return { host: u.hostname.replace(/^\[(.*)\]$/, '$1'), port: u.port ? Number(u.port) : 4222 };
}

/** True when a NATS server answers on host:port (it greets every client with `INFO {…}`). */
export async function natsAnswers(host: string, port: number, timeoutMs = 1000): Promise<boolean> {
  const greeting = await readGreeting(host, port, timeoutMs);
  return greeting !== null && greeting.startsWith('INFO ');
}

/**
 * For `npm start`: reuse the NATS server already answering on `url`, else start one on that
 * port (only for a loopback address; a remote NATS_URL that does not answer is an error).
 */
export async function ensureNats(url: string, opts: Omit<StartNatsOptions, 'port' | 'host'>): Promise<RunningNats> {
  const { host, port } = parseNatsUrl(url);
  if (await natsAnswers(host, port)) {
    return { url, host, port, pid: undefined, reused: true, stop: async () => undefined };
  }
  if (!isLoopback(host)) throw new LocalStackError(`NATS_URL ${url}: no NATS server answers there`);
  if (await isListening(host, port)) throw new LocalStackError(`NATS_URL ${url}: port ${port} is taken by something that is not NATS`);
  return startNats({ ...opts, host: host === 'localhost' ? '127.0.0.1' : host, port });
}
