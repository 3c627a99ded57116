/**
 * The local S3-compatible server: s3rver (npm) in its own child process (see s3-server.ts for
 * the ListMultipartUploads fix and the access-key mapping).
 */
import { mkdir } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { formatHostPort, isListening, spawnDaemon, waitForLine } from './daemon.js';

/** Defaults of libs/config (S3_ACCESS_KEY / S3_SECRET_KEY / S3_BUCKET). */
export const DEFAULT_S3_ACCESS_KEY = 'mailwarden';
export const DEFAULT_S3_SECRET_KEY = 'mailwarden-secret';
export const DEFAULT_S3_BUCKET = 'mailwarden';

const S3_SERVER_ENTRY = fileURLToPath(new URL('./s3-server.js', import.meta.url));

export interface StartS3Options {
  /** Objects in `<stateDir>/s3/`, log in `<stateDir>/logs/s3.log`. */
  stateDir: string;
  /** 0 (default) picks a free port. */
  port?: number;
  host?: string;
  accessKey?: string;
  secretKey?: string;
  /** Buckets created at start when missing (default: none; services create theirs). */
  buckets?: string[];
  readyTimeoutMs?: number;
  /** Run in its own process group (see DaemonOptions.detached). Default false. */
  detached?: boolean;
}

export interface RunningS3 {
  /** `http://host:port` */
  endpoint: string;
  host: string;
  port: number;
  pid: number;
  accessKey: string;
  secretKey: string;
  /** Where s3rver keeps buckets and objects. */
  directory: string;
  /** SIGTERM, SIGKILL after 5 s. Idempotent. */
  stop(): Promise<void>;
}

export async function startS3(opts: StartS3Options): Promise<RunningS3> {
  const stateDir = resolve(opts.stateDir);
  const host = opts.host ?? '127.0.0.1';
  const directory = join(stateDir, 's3');
  await mkdir(directory, { recursive: true });
  const accessKey = opts.accessKey ?? DEFAULT_S3_ACCESS_KEY;
  const secretKey = opts.secretKey ?? DEFAULT_S3_SECRET_KEY;
  const args = [S3_SERVER_ENTRY, '--dir', directory, '--host', host, '--port', String(opts.port ?? 0)];
  args.push('--access-key', accessKey, '--secret-key', secretKey, '--watch-stdin');
  for (const b of opts.buckets ?? []) args.push('--bucket', b);
  const daemon = spawnDaemon(process.execPath, args, {
    name: 's3-server',
    logFile: join(stateDir, 'logs', 's3.log'),
    stdinPipe: true,
    detached: opts.detached,
  });
  try {
    const [line] = await waitForLine(daemon, /^\{.*"event":"ready".*\}$/, opts.readyTimeoutMs ?? 15_000);
    const { port } = JSON.parse(line) as { port: number };
    if (!(await isListening(host, port))) throw new Error(`s3-server said ready but ${host}:${port} does not accept connections`);
    return {
      endpoint: `http://${formatHostPort(host, port)}`,
      host,
      port,
      pid: daemon.pid,
      accessKey,
      secretKey,
      directory,
      stop: () => daemon.stop('SIGTERM', 5000),
    };
  } catch (err) {
    await daemon.stop('SIGKILL');
    throw err;
  }
}
