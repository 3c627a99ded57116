import { spawn } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import type { TestContext } from 'node:test';
import { PolicyStore, connectBus, ensureTopology, type Bus } from '@mailwarden/bus';
import type { FastifyInstance } from 'fastify';
import { ActivityLog, buildApp, type AppDeps } from '../src/index.js';
import type { EngineProbe, EngineStatus } from '../src/engine-probe.js';

export const TOKEN = 'test-admin-token-0123456789';
export const auth = { authorization: `Bearer ${TOKEN}` };

export interface TestNats {
  url: string;
  stop(): Promise<void>;
}

/**
 * A private nats-server with JetStream in a temp dir (`-p -1`: it picks a free port and says which).
 * The same command as @mailwarden/local-stack's startNats, kept here so these tests need no more than nats-server.
 */
export async function startTestNats(): Promise<TestNats> {
  const dir = await mkdtemp(join(tmpdir(), 'mw-config-nats-'));
  const child = spawn('nats-server', ['-js', '-sd', dir, '-a', '127.0.0.1', '-p', '-1'], { stdio: ['ignore', 'ignore', 'pipe'] });
  const exited = new Promise<void>((r) => child.once('exit', () => r()));
  const url = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error('nats-server did not start within 10 s')), 10_000);
    let port: string | undefined;
    const lines = createInterface({ input: child.stderr! });
    lines.on('line', (line) => {
      const m = /Listening for client connections on [^:]+:(\d+)/.exec(line);
      if (m) port = m[1];
      if (/Server is ready/.test(line) && port) {
        clearTimeout(timer);
        resolve(`nats://127.0.0.1:${port}`);
      }
    });
    child.once('error', reject);
    child.once('exit', (code) => reject(new Error(`nats-server exited with ${code}`)));
  });
  return {
    url,
    async stop() {
      if (child.exitCode === null) child.kill('SIGTERM');
      await exited;
      await rm(dir, { recursive: true, force: true });
    },
  };
}

/** An engine probe with a fixed answer, for tests that are not about clamd. */
export function fixedEngine(status: Partial<EngineStatus> = {}): EngineProbe {
  return {
    status: async () => ({
      reachable: true,
      checkedAt: new Date().toISOString(),
      engines: [{ address: '127.0.0.1:3310', reachable: true, engine: 'ClamAV 1.4.3', signatures: '27432', raw: 'ClamAV 1.4.3/27432/Thu Nov 26 09:00:00 2026' }],
      ...status,
    }),
  };
}

export interface Harness {
  nats: TestNats;
  bus: Bus;
  store: PolicyStore;
  activity: ActivityLog;
  app: FastifyInstance;
}

/** fastify/demo's build(t): a real NATS with the topology, the app on top of it, all closed after the test. */
export async function build(t: TestContext, deps: Partial<AppDeps> = {}): Promise<Harness> {
  const nats = await startTestNats();
  const bus = await connectBus({ url: nats.url, name: 'config-test' });
  await ensureTopology(bus.jsm, bus.kvm);
  const store = await PolicyStore.open(bus.kvm);
  const activity = new ActivityLog();
  const app = await buildApp({ policyStore: store, activity, engine: fixedEngine(), adminToken: TOKEN, ...deps });
  t.after(async () => {
    await app.close();
    await bus.nc.close();
    await nats.stop();
  });
  return { nats, bus, store, activity, app };
}
