/**
 * A private nats-server with JetStream: `nats-server -js -sd <dir> -a 127.0.0.1 -p <port>`, by
 * default with the production users and permissions (deploy/nats/auth.conf) and passwords
 * generated in the state dir, so that local runs and tests exercise the permissions for real.
 */
import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { copyFile, mkdir, readFile, writeFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { LocalStackError, formatHostPort, isListening, isLoopback, readGreeting, spawnDaemon, waitUntil, waitForLine } from './daemon.js';
import { REPO_ROOT } from './service.js';

/** The NATS users of deploy/nats/auth.conf and the server-side variable holding each one's password. */
export const NATS_USERS = {
  'mailwarden-init': 'NATS_INIT_PASSWORD',
  'smtp-gateway': 'NATS_SMTP_GATEWAY_PASSWORD',
  'pop3-gateway': 'NATS_POP3_GATEWAY_PASSWORD',
  scanner: 'NATS_SCANNER_PASSWORD',
  reassembler: 'NATS_REASSEMBLER_PASSWORD',
  config: 'NATS_CONFIG_PASSWORD',
} as const;
export type NatsUserName = keyof typeof NATS_USERS;
/** The user that creates the streams (and that tests use to look around). */
export const NATS_ADMIN_USER: NatsUserName = 'mailwarden-init';

export interface NatsCredentials {
  user: string;
  password: string;
}

export const AUTH_CONF = join(REPO_ROOT, 'deploy', 'nats', 'auth.conf');

/**
 * The passwords of `<stateDir>/nats-users.json` (mode 600), made on first use. Kept, so a server
 * left running by an earlier `npm start` on the same state dir is reused with the same passwords.
 */
export async function natsPasswords(stateDir: string): Promise<Record<NatsUserName, string>> {
  const file = join(resolve(stateDir), 'nats-users.json');
  const stored: Partial<Record<string, string>> = existsSync(file) ? (JSON.parse(await readFile(file, 'utf8')) as Record<string, string>) : {};
  let changed = !existsSync(file);
  const out = {} as Record<NatsUserName, string>;
  for (const user of Object.keys(NATS_USERS) as NatsUserName[]) {
    // A letter first: nats.conf parses the value (a leading "3e5…" would be read as a number).
    out[user] = stored[user] ?? ((changed = true), `p${randomBytes(18).toString('hex')}`);
  }
  if (changed) {
    await mkdir(resolve(stateDir), { recursive: true });
    await writeFile(file, JSON.stringify(out, null, 2) + '\n', { mode: 0o600 });
  }
  return out;
}

/** NATS_USER / NATS_PASSWORD for a service run against `nats` (nothing when it runs without users). */
export function natsServiceEnv(nats: Pick<RunningNats, 'users'>, user: string): Record<string, string> {
  const creds = nats.users?.[user as NatsUserName];
  return creds ? { NATS_USER: creds.user, NATS_PASSWORD: creds.password } : {};
}

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
  /**
   * Users and permissions of deploy/nats/auth.conf, passwords from `<stateDir>/nats-users.json`
   * (default true); false = anonymous access to everything (unit tests of the bus itself).
   */
  auth?: boolean;
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
  /** Each user's credentials; undefined when the server runs without authentication. */
  users?: Record<NatsUserName, NatsCredentials>;
}

function credentials(passwords: Record<NatsUserName, string>): Record<NatsUserName, NatsCredentials> {
  return Object.fromEntries(Object.entries(passwords).map(([user, password]) => [user, { user, password }])) as Record<NatsUserName, NatsCredentials>;
}

export async function startNats(opts: StartNatsOptions): Promise<RunningNats> {
  const stateDir = resolve(opts.stateDir);
  const host = opts.host ?? '127.0.0.1';
  const storeDir = join(stateDir, 'nats');
  await mkdir(storeDir, { recursive: true });
  const timeoutMs = opts.readyTimeoutMs ?? 15_000;
  const auth = opts.auth ?? true;
  const args: string[] = [];
  const env: Record<string, string | undefined> = { ...process.env };
  let users: Record<NatsUserName, NatsCredentials> | undefined;
  if (auth) {
    // The production auth.conf, included from a config of our own (includes are relative).
    const confDir = join(stateDir, 'nats-conf');
    await mkdir(confDir, { recursive: true });
    await copyFile(AUTH_CONF, join(confDir, 'auth.conf'));
    await writeFile(join(confDir, 'nats.conf'), '# Written by @mailwarden/local-stack: the users of deploy/nats/auth.conf.\ninclude "auth.conf"\n');
    const passwords = await natsPasswords(stateDir);
    for (const [user, variable] of Object.entries(NATS_USERS)) env[variable] = passwords[user as NatsUserName];
    users = credentials(passwords);
    args.push('-c', join(confDir, 'nats.conf'));
  }
  const daemon = spawnDaemon(
    opts.binary ?? 'nats-server',
    // -p -1: nats-server picks a random free port and logs it (no race with another process).
    [...args, '-js', '-sd', storeDir, '-a', host, '-p', String(opts.port || -1)],
    { name: 'nats-server', logFile: join(stateDir, 'logs', 'nats.log'), detached: opts.detached, env },
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
      ...(users ? { users } : {}),
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
    // Presumably the server an earlier `npm start` on this state dir left running: its passwords.
    const users = (opts.auth ?? true) ? credentials(await natsPasswords(opts.stateDir)) : undefined;
    return { url, host, port, pid: undefined, reused: true, stop: async () => undefined, ...(users ? { users } : {}) };
  }
  if (!isLoopback(host)) throw new LocalStackError(`NATS_URL ${url}: no NATS server answers there`);
  if (await isListening(host, port)) throw new LocalStackError(`NATS_URL ${url}: port ${port} is taken by something that is not NATS`);
  return startNats({ ...opts, host: host === 'localhost' ? '127.0.0.1' : host, port });
}

/** libs/bus's init step (streams, consumers, buckets, default policy); built by `tsc -b`. */
export const INIT_ENTRY = join(REPO_ROOT, 'libs', 'bus', 'dist', 'src', 'init-cli.js');

/**
 * Runs mailwarden-init against `nats` as its own user (or anonymously on a server without users),
 * as docker-compose and Kubernetes do before the services. Output goes to
 * `<stateDir>/logs/mailwarden-init.log`; rejects when it fails.
 */
export async function runNatsInit(nats: Pick<RunningNats, 'url' | 'users'>, opts: { stateDir: string; env?: Record<string, string | undefined>; timeoutMs?: number }): Promise<void> {
  if (!existsSync(INIT_ENTRY)) throw new LocalStackError(`mailwarden-init: ${INIT_ENTRY} does not exist (run \`npx tsc -b\`)`);
  const logFile = join(resolve(opts.stateDir), 'logs', 'mailwarden-init.log');
  const daemon = spawnDaemon(process.execPath, [INIT_ENTRY], {
    name: 'mailwarden-init',
    logFile,
    cwd: REPO_ROOT,
    env: { ...process.env, ...opts.env, NATS_URL: nats.url, ...natsServiceEnv(nats, NATS_ADMIN_USER) },
  });
  const timer = setTimeout(() => void daemon.stop('SIGKILL'), opts.timeoutMs ?? 60_000);
  try {
    const code = await daemon.exited;
    if (code !== 0) throw new LocalStackError(`mailwarden-init exited with ${code} (log: ${logFile}):\n${daemon.output()}`);
  } finally {
    clearTimeout(timer);
  }
}
