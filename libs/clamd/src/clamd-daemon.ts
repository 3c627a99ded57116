/**
 * Starts a private clamd for local runs and tests: its own config (from
 * deploy/clamav/clamd.conf.template), its own copy of the project's test signatures, its own
 * TCP port and unix socket, all under `stateDir`.
 */
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { closeSync, openSync } from 'node:fs';
import { copyFile, mkdir, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { ClamdClient, type ClamdAddress } from './clamd-client.js';
import { freePort } from './free-port.js';

/** deploy/clamav of this repository (from libs/clamd/dist/src/). */
export const CLAMAV_DEPLOY_DIR = fileURLToPath(new URL('../../../../deploy/clamav/', import.meta.url));

/**
 * (Re)writes `<dir>/mailwarden.probe.ndb` for the signature databases in `dir` with
 * deploy/clamav/generate-signatures.mjs --probe, so the database identity clamd reports changes
 * with them. Returns the probe signature's name (`Mailwarden.DbVersion.<12 hex>`).
 */
export async function regenerateDatabaseProbe(dir: string): Promise<string> {
  const script = join(CLAMAV_DEPLOY_DIR, 'generate-signatures.mjs');
  const { stdout } = await promisify(execFile)(process.execPath, [script, '--probe', resolve(dir)]);
  const name = /Mailwarden\.DbVersion\.[0-9a-f]+/.exec(stdout)?.[0];
  if (name === undefined) throw new Error(`generate-signatures.mjs --probe printed no probe name: ${stdout.slice(0, 200)}`);
  return name;
}

/** File extensions clamd loads as signature databases. */
const DATABASE_EXTENSIONS = new Set([
  '.cvd', '.cld', '.cud', '.db', '.hdb', '.hsb', '.hdu', '.hsu', '.mdb', '.msb', '.mdu', '.msu', '.ndb',
  '.ndu', '.ldb', '.ldu', '.idb', '.cdb', '.crb', '.fp', '.sfp', '.ign', '.ign2', '.ftm', '.pdb', '.gdb',
  '.wdb', '.cbc', '.cat', '.info', '.yar', '.yara', '.pwdb',
]);

/** Longest unix socket path Linux accepts (sun_path is 108 bytes with the NUL). */
const MAX_UNIX_PATH = 107;

export interface StartClamdOptions {
  /** Directory for clamd.conf, db/, clamd.log, clamd.pid and the socket; created if missing. */
  stateDir: string;
  /** TCP address to bind. Default 127.0.0.1. */
  host?: string;
  /** TCP port; 0 or undefined picks a free one. */
  port?: number;
  /** Signature directory used as is. Default: a copy of deploy/clamav's databases in stateDir/db. */
  databaseDir?: string;
  /** Extra or replaced clamd.conf directives, e.g. `{ StreamMaxLength: '1M' }`. */
  config?: Record<string, string | number>;
  /** clamd binary. Default /usr/sbin/clamd. */
  clamdPath?: string;
  /** How long to wait for PONG. Default 30000 ms. */
  readyTimeoutMs?: number;
}

export interface RunningClamd {
  /** "host:port" of the TCP listener. */
  address: string;
  /** The same TCP listener as a ClamdAddress. */
  tcp: ClamdAddress & { kind: 'tcp' };
  /** Unix socket path, or undefined when stateDir is too deep for a unix socket path. */
  socketPath: string | undefined;
  pid: number;
  logFile: string;
  /** SIGTERM, wait for exit (SIGKILL after 10 s). Idempotent. */
  stop(): Promise<void>;
}

/** Fills `{{NAME}}` placeholders outside comments; leftover placeholders are an error. */
export function renderClamdConfig(
  template: string,
  values: Record<string, string | undefined>,
  overrides: Record<string, string | number> = {},
): string {
  const out: string[] = [];
  for (const line of template.split('\n')) {
    if (/^\s*#/.test(line)) {
      out.push(line);
      continue;
    }
    // A placeholder whose value is undefined removes its whole directive (e.g. no LocalSocket).
    const keys = [...line.matchAll(/\{\{([A-Z_]+)\}\}/g)].map((m) => m[1] as string);
    if (keys.some((k) => k in values && values[k] === undefined)) continue;
    const missing = keys.find((k) => !(k in values));
    if (missing !== undefined) throw new Error(`clamd.conf template: no value for placeholder {{${missing}}}`);
    out.push(line.replace(/\{\{([A-Z_]+)\}\}/g, (_whole, k: string) => values[k] as string));
  }
  let text = out.join('\n');
  for (const [key, value] of Object.entries(overrides)) {
    if (!/^[A-Za-z0-9]+$/.test(key) || /[\r\n]/.test(String(value))) throw new Error(`invalid clamd directive ${key}`);
    const re = new RegExp(`^${key}\\s.*$`, 'm');
    const line = `${key} ${value}`;
    text = re.test(text) ? text.replace(re, line) : `${text.replace(/\n*$/, '\n')}${line}\n`;
  }
  return text;
}

async function copyDatabases(fromDir: string, toDir: string): Promise<number> {
  await rm(toDir, { recursive: true, force: true });
  await mkdir(toDir, { recursive: true });
  let n = 0;
  for (const name of await readdir(fromDir)) {
    const dot = name.lastIndexOf('.');
    if (dot > 0 && DATABASE_EXTENSIONS.has(name.slice(dot))) {
      await copyFile(join(fromDir, name), join(toDir, name));
      n++;
    }
  }
  return n;
}

async function tail(file: string, lines = 15): Promise<string> {
  try {
    const text = (await readFile(file, 'utf8')).trimEnd();
    return text === '' ? '' : text.split('\n').slice(-lines).join('\n');
  } catch {
    return '';
  }
}

export async function startClamd(opts: StartClamdOptions): Promise<RunningClamd> {
  const stateDir = resolve(opts.stateDir);
  const host = opts.host ?? '127.0.0.1';
  const clamdPath = opts.clamdPath ?? '/usr/sbin/clamd';
  const readyTimeoutMs = opts.readyTimeoutMs ?? 30000;
  await mkdir(stateDir, { recursive: true });

  let databaseDir = opts.databaseDir;
  if (databaseDir === undefined) {
    databaseDir = join(stateDir, 'db');
    const n = await copyDatabases(CLAMAV_DEPLOY_DIR, databaseDir);
    if (n === 0) throw new Error(`no signature databases found in ${CLAMAV_DEPLOY_DIR}`);
  }
  const template = await readFile(join(CLAMAV_DEPLOY_DIR, 'clamd.conf.template'), 'utf8');
  const sockPath = join(stateDir, 'clamd.sock');
  const socketPath = sockPath.length <= MAX_UNIX_PATH ? sockPath : undefined;
  const logFile = join(stateDir, 'clamd.log');
  const outFile = join(stateDir, 'clamd.out');
  const confFile = join(stateDir, 'clamd.conf');

  // An auto-picked port can be taken by someone else before clamd binds it: retry with another.
  const attempts = opts.port ? 1 : 3;
  for (let attempt = 1; ; attempt++) {
    const port = opts.port || (await freePort(host));
    const conf = renderClamdConfig(
      template,
      {
        DATABASE_DIR: resolve(databaseDir),
        TCP_ADDR: host,
        TCP_PORT: String(port),
        LOCAL_SOCKET: socketPath,
        PID_FILE: join(stateDir, 'clamd.pid'),
        LOG_FILE: logFile,
      },
      opts.config,
    );
    await writeFile(confFile, conf);
    await writeFile(logFile, '');
    try {
      return await launch({ clamdPath, confFile, logFile, outFile, host, port, socketPath, readyTimeoutMs });
    } catch (err) {
      const bindFailure = /bind|address already in use/i.test(err instanceof Error ? err.message : '');
      if (attempt >= attempts || !bindFailure) throw err;
    }
  }
}

interface LaunchSpec {
  clamdPath: string;
  confFile: string;
  logFile: string;
  outFile: string;
  host: string;
  port: number;
  socketPath: string | undefined;
  readyTimeoutMs: number;
}

async function launch(spec: LaunchSpec): Promise<RunningClamd> {
  const out = openSync(spec.outFile, 'w');
  let child: ChildProcess;
  try {
    // No pipes: clamd's output goes to a file, so it can never block on a full pipe.
    child = spawn(spec.clamdPath, ['-c', spec.confFile], { stdio: ['ignore', out, out] });
  } finally {
    closeSync(out);
  }
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((res) => {
    child.once('exit', (code, signal) => res({ code, signal }));
  });
  let exitInfo: { code: number | null; signal: NodeJS.Signals | null } | undefined;
  void exited.then((info) => (exitInfo = info));
  let spawnError: Error | undefined;
  child.once('error', (err) => (spawnError = err));

  // If our process exits without stop(), do not leave clamd behind.
  const killOnExit = (): void => {
    if (exitInfo === undefined) child.kill('SIGKILL');
  };
  process.on('exit', killOnExit);

  const stop = async (): Promise<void> => {
    process.off('exit', killOnExit);
    if (exitInfo !== undefined || child.pid === undefined) return;
    child.kill('SIGTERM');
    const killer = setTimeout(() => child.kill('SIGKILL'), 10000);
    await exited;
    clearTimeout(killer);
  };

  const hostPort = spec.host.includes(':') ? `[${spec.host}]:${spec.port}` : `${spec.host}:${spec.port}`;
  const tcp = { kind: 'tcp' as const, host: spec.host, port: spec.port };
  const client = new ClamdClient({ addresses: [tcp], connectTimeoutMs: 500, commandTimeoutMs: 2000 });
  const deadline = Date.now() + spec.readyTimeoutMs;

  const failure = async (why: string): Promise<Error> => {
    await stop();
    const log = await tail(spec.logFile);
    const out = await tail(spec.outFile);
    return new Error(
      `clamd (${spec.clamdPath} -c ${spec.confFile}) ${why}` +
        (log ? `\n--- clamd log (tail) ---\n${log}` : '') +
        (out && out !== log ? `\n--- clamd output (tail) ---\n${out}` : ''),
    );
  };

  for (;;) {
    if (spawnError !== undefined) throw await failure(`could not be started: ${spawnError.message}`);
    if (exitInfo !== undefined) {
      throw await failure(`exited before it was ready (code ${exitInfo.code}, signal ${exitInfo.signal})`);
    }
    if (await client.ping()) break;
    if (Date.now() > deadline) throw await failure(`did not answer PING within ${spec.readyTimeoutMs} ms`);
    await Promise.race([sleep(50), exited]);
  }

  return {
    address: hostPort,
    tcp,
    socketPath: spec.socketPath,
    pid: child.pid as number,
    logFile: spec.logFile,
    stop,
  };
}
