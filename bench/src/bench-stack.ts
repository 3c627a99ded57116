/**
 * What the benchmark runs against: the local stack (NATS, s3rver, clamd, Dovecot) from
 * @mailwarden/local-stack, or the NATS / S3 / clamd given in the environment (`--stack-from-env`);
 * a counting proxy in front of S3, a discarding SMTP sink as the gateway's upstream, and the
 * Mailwarden services themselves (started here, so their pids and logs are ours to measure).
 */
import { join } from 'node:path';
import { PolicyStore, connectBus, natsSettings } from '@mailwarden/bus';
import { freePort, serviceEntry, serviceIsBuilt, startService, startStack, type LocalStack, type RunningService } from '@mailwarden/local-stack';
import { processName } from './proc.js';
import { startChild, type BenchChild } from './child.js';

export interface BenchStackOptions {
  stateDir: string;
  fromEnv: boolean;
  /** Node options for the Mailwarden services (e.g. --cpu-prof). */
  nodeArgs?: string[];
  /** Also start the POP3 gateway (memory benchmark). */
  pop3: boolean;
  /** Extra environment for the services (e.g. SCAN_CACHE=off). */
  serviceEnv?: Record<string, string>;
  /** How the services reach S3 at first. */
  s3: S3Mode;
  /** Policy message size limit: the 50 MB memory benchmark needs more than the 50 MiB default. */
  maxMessageBytes: number;
}

export interface BenchStack {
  smtp: { host: string; port: number };
  sink: BenchChild;
  s3counter: BenchChild;
  clamdAddresses: string;
  /** clamd's unix socket (the peers of `--peers` use it); from BENCH_CLAMD_SOCKET with --stack-from-env. */
  clamdSocket?: string;
  services: Record<string, RunningService>;
  /** Every process measured, by name. */
  pids: Record<string, number>;
  pop3?: { host: string; port: number; mailRoot: string };
  /** Every service process started so far (restarts included). */
  history: { name: string; pid: number; s3: S3Mode }[];
  /** Stops the services gracefully (profiles get written) and starts them again. */
  restartServices(s3: S3Mode): Promise<void>;
  /**
   * Replaces the scanner tier: stops every scanner process and starts one per entry of `envs`
   * (extra environment each, e.g. its own CLAMD_ADDRESSES), named `scanner`, `scanner-2`, …
   * (their pids and logs under those names). The other services keep running.
   */
  setScanners(envs: Record<string, string>[]): Promise<void>;
  /** Stops the services, then everything else. */
  stop(): Promise<void>;
}

/** `counted`: the services reach S3 through the counting proxy; `direct`: straight (no proxy cost). */
export type S3Mode = 'counted' | 'direct';

const hostPort = (s: string): { host: string; port: number } => {
  const i = s.lastIndexOf(':');
  return { host: s.slice(0, i), port: Number(s.slice(i + 1)) };
};

export async function startBenchStack(opts: BenchStackOptions): Promise<BenchStack> {
  const cleanups: (() => Promise<void>)[] = [];
  const stopAll = async (): Promise<void> => {
    for (const c of cleanups.splice(0).reverse()) await c().catch((err: unknown) => console.error(`bench: cleanup failed: ${(err as Error).message}`));
  };
  try {
    let stack: LocalStack | undefined;
    let base: Record<string, string>;
    const pids: Record<string, number> = {};
    if (opts.fromEnv) {
      const need = ['NATS_URL', 'S3_ENDPOINT', 'CLAMD_ADDRESSES'];
      const missing = need.filter((n) => !process.env[n]);
      if (missing.length) throw new Error(`--stack-from-env needs ${missing.join(', ')} in the environment`);
      base = Object.fromEntries(Object.entries(process.env).filter((e): e is [string, string] => e[1] !== undefined));
      base.MAILWARDEN_STATE_DIR = opts.stateDir;
      for (const item of (process.env.BENCH_PIDS ?? '').split(',').filter(Boolean)) {
        const [name, pid] = item.split('=');
        if (name && pid) pids[name] = Number(pid);
      }
    } else {
      stack = await startStack({ stateDir: opts.stateDir });
      cleanups.push(() => stack!.stop());
      base = { ...stack.env };
      pids.nats = stack.nats.pid!;
      pids.s3rver = stack.s3.pid;
      pids.clamd = stack.clamd.pid;
    }

    const s3 = new URL(base.S3_ENDPOINT!);
    const s3counter = await startChild('s3-counter', 's3-counter', [s3.hostname, s3.port || '80']);
    cleanups.push(() => s3counter.stop());
    const sink = await startChild('smtp-sink', 'smtp-sink');
    cleanups.push(() => sink.stop());
    pids['s3-counter'] = s3counter.pid;
    pids['smtp-sink'] = sink.pid;

    // The policy before the services start, so they all begin with it.
    const bus = await connectBus({ ...(stack ? stack.natsClient() : natsSettings({ NATS_URL: base.NATS_URL!, NATS_USER: base.NATS_USER, NATS_PASSWORD: base.NATS_PASSWORD, NATS_CA: base.NATS_CA })), name: 'bench' });
    try {
      const policies = await PolicyStore.open(bus.kvm);
      const doc = await policies.get();
      if (doc.policy.limits.maxMessageBytes < opts.maxMessageBytes) {
        doc.policy.limits.maxMessageBytes = opts.maxMessageBytes;
        await policies.put(doc.policy, { changedBy: 'bench' });
      }
    } finally {
      await bus.nc.close();
    }

    const smtpListen = opts.fromEnv ? `127.0.0.1:${await freePort()}` : base.SMTP_LISTEN!;
    const env: Record<string, string> = {
      ...base,
      SMTP_UPSTREAM: `127.0.0.1:${sink.port}`,
      SMTP_LISTEN: smtpListen,
      // No ops endpoints: their port-0 listeners can take a port local-stack reserved for a
      // gateway that starts later (EADDRINUSE), and the benchmark does not read them.
      OPS_LISTEN: 'off',
      ...opts.serviceEnv,
    };
    const nodeArgs = opts.nodeArgs ?? ['--enable-source-maps'];
    const services: Record<string, RunningService> = {};
    const history: { name: string; pid: number; s3: S3Mode }[] = [];
    const running: RunningService[] = [];
    const withPop3 = opts.pop3 && serviceIsBuilt('pop3-gateway') && !!env.POP3_UPSTREAM && !!env.DEV_MAILBOX_DIR;
    const stopServices = async (): Promise<void> => {
      for (const svc of running.splice(0).reverse()) await svc.stop('SIGTERM', 15_000);
      for (const name of Object.keys(services)) {
        delete services[name];
        delete pids[name];
      }
    };
    let s3Mode = opts.s3;
    const svcEnv = (): Record<string, string> => ({ ...env, S3_ENDPOINT: s3Mode === 'counted' ? `http://127.0.0.1:${s3counter.port}` : base.S3_ENDPOINT! });
    /** Starts service `kind` as process `name` (a second scanner: `scanner-2`, its own log). */
    const launch = async (kind: string, name: string, extraEnv: Record<string, string> = {}): Promise<void> => {
      const svc = await startService(name, { ...svcEnv(), ...stack?.natsEnv(kind), ...extraEnv }, { stateDir: opts.stateDir, nodeArgs, readyTimeoutMs: 60_000, entry: serviceEntry(kind) });
      running.push(svc);
      services[name] = svc;
      pids[name] = svc.pid;
      history.push({ name, pid: svc.pid, s3: s3Mode });
    };
    const checkPids = (): void => {
      for (const [name, pid] of Object.entries(pids)) {
        if (!processName(pid)) throw new Error(`bench: process ${name} (pid ${pid}) not found`);
      }
    };
    const startServices = async (s3: S3Mode): Promise<void> => {
      await stopServices();
      s3Mode = s3;
      for (const name of ['scanner', 'reassembler', 'smtp-gateway', ...(withPop3 ? ['pop3-gateway'] : [])]) await launch(name, name);
      checkPids();
    };
    const scannerName = (i: number): string => (i === 0 ? 'scanner' : `scanner-${i + 1}`);
    const setScanners = async (envs: Record<string, string>[]): Promise<void> => {
      const old = running.filter((svc) => svc.name === 'scanner' || svc.name.startsWith('scanner-'));
      for (const svc of old) {
        await svc.stop('SIGTERM', 15_000);
        running.splice(running.indexOf(svc), 1);
        delete services[svc.name];
        delete pids[svc.name];
      }
      for (const [i, extra] of envs.entries()) await launch('scanner', scannerName(i), extra);
      checkPids();
    };
    cleanups.push(stopServices);
    await startServices(opts.s3);
    return {
      smtp: hostPort(smtpListen),
      sink,
      s3counter,
      clamdAddresses: env.CLAMD_ADDRESSES!,
      ...((stack?.clamd.socketPath ?? process.env.BENCH_CLAMD_SOCKET) ? { clamdSocket: stack?.clamd.socketPath ?? process.env.BENCH_CLAMD_SOCKET } : {}),
      services,
      pids,
      history,
      ...(withPop3 ? { pop3: { ...hostPort(env.POP3_LISTEN!), mailRoot: env.DEV_MAILBOX_DIR! } } : {}),
      restartServices: startServices,
      setScanners,
      stop: stopAll,
    };
  } catch (err) {
    await stopAll();
    throw err;
  }
}

export const logFileOf = (stateDir: string, service: string): string => join(stateDir, 'logs', `${service}.log`);
