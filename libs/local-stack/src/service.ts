/**
 * Runs one Mailwarden service (`node services/<name>/dist/src/main.js`) as a child process with
 * a given environment, its output appended to `<stateDir>/logs/<name>.log`, and waits until it
 * logs a JSON line with `"event":"ready"`.
 */
import { existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { LocalStackError, spawnDaemon, waitForLine } from './daemon.js';

/** The repository root (this file is libs/local-stack/dist/src/service.js once built). */
export const REPO_ROOT = fileURLToPath(new URL('../../../../', import.meta.url));

/** Services `startStack({ services: true })` and `npm start` run, in start order. */
export const CORE_SERVICES = ['scanner', 'reassembler', 'smtp-gateway'] as const;
/** Started too when built (they come later). */
export const OPTIONAL_SERVICES = ['config', 'pop3-gateway'] as const;

export function serviceEntry(name: string): string {
  return join(REPO_ROOT, 'services', name, 'dist', 'src', 'main.js');
}

export function serviceIsBuilt(name: string): boolean {
  return existsSync(serviceEntry(name));
}

export interface StartServiceOptions {
  /** Log file goes to `<stateDir>/logs/<name>.log`. Default: env.MAILWARDEN_STATE_DIR, else the OS temp dir. */
  stateDir?: string;
  /** Deadline for the `"event":"ready"` line. Default 30 s. */
  readyTimeoutMs?: number;
  /** Node options. Default ['--enable-source-maps']. */
  nodeArgs?: string[];
  /** Script to run instead of services/<name>/dist/src/main.js (tests, tools). */
  entry?: string;
  /** Run in its own process group (see DaemonOptions.detached). Default false. */
  detached?: boolean;
}

export interface RunningService {
  name: string;
  pid: number;
  logFile: string;
  /** The parsed `"event":"ready"` log line (services may put their listen addresses in it). */
  ready: Record<string, unknown>;
  /** Resolves with the exit code (null when killed by a signal). */
  exited: Promise<number | null>;
  /** Sends `signal` (default SIGTERM), SIGKILL after `graceMs` (default 10 s); resolves on exit. */
  stop(signal?: NodeJS.Signals, graceMs?: number): Promise<void>;
  /** SIGKILL now (crash simulation); resolves on exit. */
  kill(): Promise<void>;
  /** The last few KB of its output. */
  output(): string;
}

function parseReady(line: string): Record<string, unknown> | undefined {
  if (!line.includes('"ready"')) return undefined;
  try {
    const obj = JSON.parse(line) as unknown;
    if (obj && typeof obj === 'object' && (obj as { event?: unknown }).event === 'ready') return obj as Record<string, unknown>;
  } catch {
    // not JSON
  }
  return undefined;
}

export async function startService(
  name: string,
  env: Record<string, string | undefined>,
  opts: StartServiceOptions = {},
): Promise<RunningService> {
  const entry = opts.entry ?? serviceEntry(name);
  if (!existsSync(entry)) throw new LocalStackError(`service ${name}: ${entry} does not exist (run \`npx tsc -b\`)`);
  const stateDir = opts.stateDir ?? env.MAILWARDEN_STATE_DIR ?? tmpdir();
  const logFile = join(stateDir, 'logs', `${name}.log`);
  const daemon = spawnDaemon(process.execPath, [...(opts.nodeArgs ?? ['--enable-source-maps']), entry], {
    name,
    logFile,
    cwd: REPO_ROOT,
    env: { ...process.env, ...env },
    detached: opts.detached,
  });
  const timeoutMs = opts.readyTimeoutMs ?? 30_000;
  let ready: Record<string, unknown>;
  try {
    ready = await waitForLine(daemon, parseReady, timeoutMs);
  } catch (err) {
    await daemon.stop('SIGKILL');
    throw new LocalStackError(`service ${name} did not become ready (log: ${logFile}): ${(err as Error).message}`, { cause: err });
  }
  return {
    name,
    pid: daemon.pid,
    logFile,
    ready,
    exited: daemon.exited,
    stop: (signal = 'SIGTERM', graceMs = 10_000) => daemon.stop(signal, graceMs),
    kill: () => daemon.stop('SIGKILL'),
    output: () => daemon.output(),
  };
}
