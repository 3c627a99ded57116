/**
 * The peer gateways of the side-by-side benchmark (`npm run bench -- --peers`): ClamSMTP and
 * Haraka with haraka-plugin-clamd, installed on demand and run by the bench itself on free ports,
 * on the same clamd (its unix socket) and the same SMTP sink as Mailwarden. See FACTS.md
 * ("Peer gateways") for how each one is run.
 *
 * - ClamSMTP: Debian package `clamsmtp`, installed with apt-get like scripts/bootstrap.mjs
 *   installs its packages (policy-rc.d denies the package's own service; root only).
 * - Haraka: npm `Haraka` + `haraka-plugin-clamd` at pinned versions, installed with
 *   `npm install --no-save` into a cache directory outside the repository's workspaces
 *   (~/.cache/mailwarden-bench/peers, or MAILWARDEN_BENCH_PEERS_DIR).
 */
import { spawnSync } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, readdirSync, readFileSync, statSync, unlinkSync, writeFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { freePort, spawnDaemon, type Daemon } from '@mailwarden/local-stack';
import { SmtpConnection } from './smtp-load.js';

/** Versions that run on Node 20 (Haraka 3.3.4 wants Node ≥ 20; npm warns EBADENGINE for a few of its dependencies, harmless). */
export const HARAKA_VERSION = '3.3.4';
export const HARAKA_CLAMD_VERSION = '1.0.6';
const CLAMSMTPD = '/usr/sbin/clamsmtpd';

export const peersDir = (): string => process.env.MAILWARDEN_BENCH_PEERS_DIR || join(homedir(), '.cache', 'mailwarden-bench', 'peers');

const say = (msg: string): void => console.error(`[bench peers] ${msg}`);

function run(cmd: string, args: string[], opts: { cwd?: string; env?: NodeJS.ProcessEnv } = {}): boolean {
  say(`$ ${[cmd, ...args].join(' ')}`);
  const r = spawnSync(cmd, args, { stdio: ['ignore', 'inherit', 'inherit'], ...opts });
  return !r.error && r.status === 0;
}

/** Installs the Debian package clamsmtp when clamsmtpd is missing (the bootstrap's way). */
export function ensureClamsmtp(): string {
  if (existsSync(CLAMSMTPD)) return CLAMSMTPD;
  const install = ['-o', 'DPkg::Lock::Timeout=300', 'install', '-y', '--no-install-recommends', 'clamsmtp'];
  if (process.env.MAILWARDEN_SKIP_APT === '1') throw new Error(`${CLAMSMTPD} missing and MAILWARDEN_SKIP_APT=1: install the Debian package clamsmtp`);
  if (process.getuid?.() !== 0) {
    throw new Error(`${CLAMSMTPD} missing. Run as root: sudo sh -c 'apt-get update && DEBIAN_FRONTEND=noninteractive apt-get ${install.join(' ')}'`);
  }
  const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
  // The package's maintainer script would start a system clamsmtpd (port 10026): deny it.
  const policy = '/usr/sbin/policy-rc.d';
  const ownPolicy = !existsSync(policy);
  if (ownPolicy) writeFileSync(policy, '#!/bin/sh\n# written by mailwarden bench/src/peers.ts during apt-get install\nexit 101\n', { mode: 0o755 });
  try {
    if (!run('apt-get', install, { env })) {
      if (!run('apt-get', ['-o', 'DPkg::Lock::Timeout=300', 'update'], { env }) || !run('apt-get', install, { env })) throw new Error('apt-get install clamsmtp failed');
    }
  } finally {
    if (ownPolicy) {
      try {
        unlinkSync(policy);
      } catch {
        // already gone
      }
    }
  }
  // A system instance started anyway (no policy-rc.d support): stop it, it is not ours.
  for (const e of readdirSync('/proc').filter((n) => /^\d+$/.test(n))) {
    try {
      if (readFileSync(`/proc/${e}/comm`, 'utf8').trim() !== 'clamsmtpd') continue;
      const argv = readFileSync(`/proc/${e}/cmdline`, 'utf8').split('\0');
      if (!argv.includes('-f')) {
        say(`stopping system clamsmtpd (pid ${e}) started by the package install`);
        process.kill(Number(e), 'SIGTERM');
      }
    } catch {
      // gone
    }
  }
  if (!existsSync(CLAMSMTPD)) throw new Error(`${CLAMSMTPD} still missing after apt-get install clamsmtp`);
  return CLAMSMTPD;
}

const installedVersion = (dir: string, pkg: string): string | undefined => {
  try {
    return (JSON.parse(readFileSync(join(dir, 'node_modules', pkg, 'package.json'), 'utf8')) as { version?: string }).version;
  } catch {
    return undefined;
  }
};

/** Installs Haraka and haraka-plugin-clamd (pinned) into the cache dir; returns Haraka's bin/haraka. */
export function ensureHaraka(): string {
  const dir = peersDir();
  const bin = join(dir, 'node_modules', 'Haraka', 'bin', 'haraka');
  if (installedVersion(dir, 'Haraka') === HARAKA_VERSION && installedVersion(dir, 'haraka-plugin-clamd') === HARAKA_CLAMD_VERSION && existsSync(bin)) return bin;
  mkdirSync(dir, { recursive: true });
  // Its own package.json: npm must not walk up into the repository's workspaces.
  if (!existsSync(join(dir, 'package.json'))) writeFileSync(join(dir, 'package.json'), JSON.stringify({ name: 'mailwarden-bench-peers', private: true }, null, 2) + '\n');
  const ok = run('npm', ['install', '--no-save', '--no-audit', '--no-fund', '--loglevel=error', `Haraka@${HARAKA_VERSION}`, `haraka-plugin-clamd@${HARAKA_CLAMD_VERSION}`], { cwd: dir });
  if (!ok || !existsSync(bin)) throw new Error(`npm install of Haraka@${HARAKA_VERSION} haraka-plugin-clamd@${HARAKA_CLAMD_VERSION} into ${dir} failed`);
  return bin;
}

export interface Peer {
  name: 'clamsmtp' | 'haraka';
  host: string;
  port: number;
  /** Its own processes (clamd is measured apart, shared by every system). */
  pids: Record<string, number>;
  logFile: string;
  stop(): Promise<void>;
}

/** Waits until the listener answers with a 220 greeting and EHLO (ClamSMTP connects to the sink first). */
async function waitSmtp(daemon: Daemon, host: string, port: number, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let last = '';
  while (Date.now() < deadline) {
    if (daemon.hasExited()) throw new Error(`${daemon.name} exited before it answered SMTP\n--- output ---\n${daemon.output()}`);
    try {
      const c = await SmtpConnection.open(host, port, 2000);
      await c.quit();
      return;
    } catch (err) {
      last = (err as Error).message;
    }
    await sleep(100);
  }
  throw new Error(`${daemon.name} did not answer SMTP on ${host}:${port} within ${timeoutMs} ms (${last})\n--- output ---\n${daemon.output()}`);
}

export interface PeerOptions {
  stateDir: string;
  /** clamd's unix socket (clamd with ScanMail yes). */
  clamdSocket: string;
  /** The SMTP sink every system delivers to. */
  sink: { host: string; port: number };
}

export async function startClamsmtp(opts: PeerOptions): Promise<Peer> {
  const bin = ensureClamsmtp();
  const dir = join(opts.stateDir, 'clamsmtp');
  const tmp = join(dir, 'tmp');
  mkdirSync(tmp, { recursive: true });
  const port = await freePort();
  const conf = join(dir, 'clamsmtpd.conf');
  writeFileSync(
    conf,
    [
      `Listen: 127.0.0.1:${port}`,
      `OutAddress: ${opts.sink.host}:${opts.sink.port}`,
      `ClamAddress: ${opts.clamdSocket}`,
      `TempDirectory: ${tmp}`,
      // Debian's default: an infected message is answered 250 and dropped.
      'Action: drop',
      'XClient: off',
      'MaxConnections: 256',
      'TimeOut: 180',
      '',
    ].join('\n'),
  );
  const logFile = join(dir, 'clamsmtpd.log');
  // -d 1 keeps it in the foreground (debug level 1).
  const daemon = spawnDaemon(bin, ['-d', '1', '-f', conf, '-p', join(dir, 'clamsmtpd.pid')], { name: 'clamsmtpd', logFile });
  try {
    await waitSmtp(daemon, '127.0.0.1', port, 15_000);
  } catch (err) {
    await daemon.stop('SIGKILL');
    throw err;
  }
  return { name: 'clamsmtp', host: '127.0.0.1', port, pids: { clamsmtpd: daemon.pid }, logFile, stop: () => daemon.stop('SIGTERM', 5000) };
}

export async function startHaraka(opts: PeerOptions): Promise<Peer> {
  const bin = ensureHaraka();
  const dir = join(opts.stateDir, 'haraka');
  const cfg = join(dir, 'config');
  mkdirSync(cfg, { recursive: true });
  // Haraka's own defaults first (connection.ini etc.: without them every connection fails), then ours.
  const defaults = join(peersDir(), 'node_modules', 'Haraka', 'config');
  for (const f of readdirSync(defaults)) if (statSync(join(defaults, f)).isFile()) copyFileSync(join(defaults, f), join(cfg, f));
  const port = await freePort();
  const files: Record<string, string> = {
    plugins: ['relay', 'clamd', 'rcpt_to.in_host_list', 'queue/smtp_forward'].join('\n'),
    // One process (Haraka's default: `nodes` unset, no cluster).
    'smtp.ini': `[main]\nlisten=127.0.0.1:${port}\n`,
    'log.ini': '[main]\nlevel=warn\ntimestamps=true\n',
    me: 'haraka.bench.example',
    'clamd.ini': [`clamd_socket=${opts.clamdSocket}`, 'timeout=180', 'max_size=104857600', '[reject]', 'virus=true', 'error=true'].join('\n'),
    'smtp_forward.ini': [`host=${opts.sink.host}`, `port=${opts.sink.port}`, 'enable_outbound=true'].join('\n'),
    host_list: 'example.test',
    relay_acl_allow: '127.0.0.1/32',
  };
  for (const [name, text] of Object.entries(files)) writeFileSync(join(cfg, name), text + '\n');
  const logFile = join(dir, 'haraka.log');
  const daemon = spawnDaemon(process.execPath, [bin, '-c', dir], { name: 'haraka', logFile, cwd: dir });
  try {
    await waitSmtp(daemon, '127.0.0.1', port, 30_000);
  } catch (err) {
    await daemon.stop('SIGKILL');
    throw err;
  }
  return { name: 'haraka', host: '127.0.0.1', port, pids: { haraka: daemon.pid }, logFile, stop: () => daemon.stop('SIGTERM', 5000) };
}
