/**
 * The whole local stack on free ports, for tests: NATS (JetStream), S3 (s3rver), clamd with
 * the project's signatures, the dev mailbox (SMTP in, maildir) and Dovecot (POP3 out); and,
 * on request, the Mailwarden services themselves.
 */
import { randomBytes } from 'node:crypto';
import { mkdir } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { startClamd, type RunningClamd } from '@mailwarden/clamd';
import { startDevMailbox, type DevMailbox } from '@mailwarden/dev-mailbox';
import { freePort } from './daemon.js';
import { startDovecot, type RunningDovecot } from './dovecot.js';
import { NATS_ADMIN_USER, natsServiceEnv, runNatsInit, startNats, type NatsCredentials, type RunningNats } from './nats.js';
import { DEFAULT_S3_BUCKET, startS3, type RunningS3 } from './s3.js';
import {
  CORE_SERVICES,
  OPTIONAL_SERVICES,
  serviceIsBuilt,
  startService,
  type RunningService,
  type StartServiceOptions,
} from './service.js';

/** Environment for the Mailwarden services (names as in libs/config/src/settings.ts, plus a few for tools). */
export interface StackEnv {
  /** Without credentials: `startService` gives each service its own NATS user (NATS_USER, NATS_PASSWORD). */
  NATS_URL: string;
  S3_ENDPOINT: string;
  S3_ACCESS_KEY: string;
  S3_SECRET_KEY: string;
  S3_BUCKET: string;
  S3_REGION: string;
  CLAMD_ADDRESSES: string;
  /** The dev mailbox's SMTP server. */
  SMTP_UPSTREAM: string;
  /** Dovecot's POP3 listener (over the dev mailbox's maildirs). */
  POP3_UPSTREAM: string;
  /** Free ports picked for the gateways and the config service. */
  SMTP_LISTEN: string;
  POP3_LISTEN: string;
  CONFIG_LISTEN: string;
  /** Random per stack. */
  ADMIN_TOKEN: string;
  /** Where startService writes logs (`<dir>/logs/<service>.log`). */
  MAILWARDEN_STATE_DIR: string;
  /** Maildir root of the dev mailbox: `<dir>/<localpart>/new/`. */
  DEV_MAILBOX_DIR: string;
  /** Dovecot's implicit-TLS POP3 listener and its self-signed certificate (not Mailwarden settings). */
  POP3S_UPSTREAM: string;
  POP3_UPSTREAM_CA: string;
  [name: string]: string;
}

export interface StartStackOptions {
  /** Everything goes below this directory (a mkdtemp dir in tests). */
  stateDir: string;
  /** Also start the services (scanner, reassembler, smtp-gateway; config and pop3-gateway when built). */
  services?: boolean;
  /** Extra variables for the services (e.g. SCANNER_CONCURRENCY). */
  env?: Record<string, string>;
  /** S3 bucket (created at start). Default `mailwarden`. */
  bucket?: string;
  /** Readiness deadline of each service. */
  serviceReadyTimeoutMs?: number;
}

export interface LocalStack {
  stateDir: string;
  env: StackEnv;
  nats: RunningNats;
  s3: RunningS3;
  clamd: RunningClamd;
  mailbox: DevMailbox;
  dovecot: RunningDovecot;
  /** Services started by `services: true` or by `startService` (stopped by `stop()`). */
  services: RunningService[];
  /** Connection settings for a client of the tests: as `user` (default mailwarden-init, which may do everything). */
  natsClient(user?: string): { url: string } & Partial<NatsCredentials>;
  /** NATS_USER and NATS_PASSWORD of service `name` (empty for a name with no NATS user). */
  natsEnv(name: string): Record<string, string>;
  /** Starts `services/<name>/dist/src/main.js` with the stack's env, its own NATS user (plus `extraEnv`). */
  startService(name: string, extraEnv?: Record<string, string>, opts?: StartServiceOptions): Promise<RunningService>;
  /** Stops everything, services first, in reverse start order. Idempotent. */
  stop(): Promise<void>;
}

export async function startStack(opts: StartStackOptions): Promise<LocalStack> {
  const stateDir = resolve(opts.stateDir);
  const mailRoot = join(stateDir, 'mail');
  const bucket = opts.bucket ?? DEFAULT_S3_BUCKET;
  await mkdir(join(stateDir, 'logs'), { recursive: true });

  const stops: Array<() => Promise<void>> = [];
  const stopAll = async (): Promise<void> => {
    const errors: unknown[] = [];
    while (stops.length) {
      const stop = stops.pop()!;
      await stop().catch((err: unknown) => errors.push(err));
    }
    if (errors.length) throw new AggregateError(errors, 'local stack: some components did not stop cleanly');
  };
  const track = <T extends { stop(): Promise<void> }>(p: Promise<T>): Promise<T> =>
    p.then((c) => {
      stops.push(() => c.stop());
      return c;
    });

  try {
    // Dovecot before the mailbox: it prepares the maildir root (owner 65534).
    // allSettled, not all: on a failure, every component that did start must be stopped.
    const results = await Promise.allSettled([
      track(startNats({ stateDir })),
      track(startS3({ stateDir, buckets: [bucket] })),
      track(startClamd({ stateDir: join(stateDir, 'clamd') })),
      track(startDovecot({ stateDir, mailRoot })),
    ] as const);
    const failed = results.find((r): r is PromiseRejectedResult => r.status === 'rejected');
    if (failed) throw failed.reason;
    const [nats, s3, clamd, dovecot] = results.map((r) => (r as PromiseFulfilledResult<unknown>).value) as [
      RunningNats,
      RunningS3,
      RunningClamd,
      RunningDovecot,
    ];
    const mailbox = await track(startDevMailbox({ listen: '127.0.0.1:0', mailRoot }));
    // Streams, consumers, buckets and the default policy, as mailwarden-init does in production:
    // the services' own NATS users may not create them.
    await runNatsInit(nats, { stateDir, env: opts.env });

    const env: StackEnv = {
      NATS_URL: nats.url,
      S3_ENDPOINT: s3.endpoint,
      S3_ACCESS_KEY: s3.accessKey,
      S3_SECRET_KEY: s3.secretKey,
      S3_BUCKET: bucket,
      S3_REGION: 'us-east-1',
      CLAMD_ADDRESSES: clamd.address,
      SMTP_UPSTREAM: mailbox.address,
      POP3_UPSTREAM: dovecot.address,
      SMTP_LISTEN: `127.0.0.1:${await freePort()}`,
      POP3_LISTEN: `127.0.0.1:${await freePort()}`,
      CONFIG_LISTEN: `127.0.0.1:${await freePort()}`,
      ADMIN_TOKEN: randomBytes(16).toString('hex'),
      MAILWARDEN_STATE_DIR: stateDir,
      DEV_MAILBOX_DIR: mailRoot,
      POP3S_UPSTREAM: dovecot.pop3sAddress ?? '',
      POP3_UPSTREAM_CA: dovecot.certFile ?? '',
      ...opts.env,
    };

    const services: RunningService[] = [];
    const launch = async (name: string, extraEnv: Record<string, string> = {}, sOpts: StartServiceOptions = {}): Promise<RunningService> => {
      const svc = await startService(name, { ...env, ...natsServiceEnv(nats, name), ...extraEnv }, {
        stateDir,
        readyTimeoutMs: opts.serviceReadyTimeoutMs,
        ...sOpts,
      });
      services.push(svc);
      stops.push(async () => {
        await svc.stop();
        services.splice(services.indexOf(svc), 1);
      });
      return svc;
    };

    if (opts.services) {
      // Workers first, so the gateways' first message finds them consuming.
      for (const name of CORE_SERVICES) await launch(name);
      for (const name of OPTIONAL_SERVICES) if (serviceIsBuilt(name)) await launch(name);
    }

    let stopping: Promise<void> | undefined;
    return {
      stateDir,
      env,
      nats,
      s3,
      clamd,
      mailbox,
      dovecot,
      services,
      natsClient: (user = NATS_ADMIN_USER) => ({ url: nats.url, ...nats.users?.[user as keyof typeof nats.users] }),
      natsEnv: (name) => natsServiceEnv(nats, name),
      startService: launch,
      stop: () => (stopping ??= stopAll()),
    };
  } catch (err) {
    await stopAll().catch(() => undefined);
    throw err;
  }
}
