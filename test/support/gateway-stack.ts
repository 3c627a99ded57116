import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startStack, type LocalStack, type RunningService } from '@mailwarden/local-stack';
import { PolicyStore, connectBus, type Bus } from '@mailwarden/bus';
import { parseHostPort } from '@mailwarden/config';
import type { Policy } from '@mailwarden/contracts';
import { waitFor } from '@mailwarden/testkit';

export interface GatewayStack {
  stack: LocalStack;
  smtp: { host: string; port: number };
  mailRoot: string;
  bus: Bus;
  policy: PolicyStore;
  services: Record<string, RunningService[]>;
  /** `http://<CONFIG_LISTEN>` (started with `config: true`). */
  configUrl: string;
  /** Changes the policy and waits until every running service logged that it applied it. */
  setPolicy(change: (p: Policy) => void): Promise<void>;
  stop(): Promise<void>;
}

/** The real stack (NATS, S3, clamd, dev mailbox) plus the Mailwarden services, on free ports. */
export async function startGatewayStack(
  opts: { scanners?: number; reassemblers?: number; env?: Record<string, string>; config?: boolean; pop3?: boolean } = {},
): Promise<GatewayStack> {
  const stateDir = await mkdtemp(join(tmpdir(), 'mw-e2e-'));
  const stack = await startStack({ stateDir, env: { SCAN_TIMEOUT_MS: '20000', ...opts.env } });
  try {
    const services: Record<string, RunningService[]> = { scanner: [], reassembler: [], 'smtp-gateway': [] };
    for (let i = 0; i < (opts.scanners ?? 1); i++) services.scanner!.push(await stack.startService('scanner'));
    for (let i = 0; i < (opts.reassemblers ?? 1); i++) services.reassembler!.push(await stack.startService('reassembler'));
    services['smtp-gateway']!.push(await stack.startService('smtp-gateway'));
    // The config service (REST API, quarantine) and the POP3 gateway, when a test needs them.
    if (opts.config) services.config = [await stack.startService('config')];
    if (opts.pop3) services['pop3-gateway'] = [await stack.startService('pop3-gateway')];
    const bus = await connectBus({ ...stack.natsClient(), name: 'e2e-test' });
    const policy = await PolicyStore.open(bus.kvm);
    return {
      stack,
      smtp: parseHostPort(stack.env.SMTP_LISTEN),
      mailRoot: stack.env.DEV_MAILBOX_DIR,
      configUrl: `http://${stack.env.CONFIG_LISTEN}`,
      bus,
      policy,
      services,
      async setPolicy(change) {
        const doc = await policy.get();
        change(doc.policy);
        const next = await policy.put(doc.policy, { expectedVersion: doc.version, changedBy: 'e2e' });
        const running = Object.values(services).flat().filter((s) => s.name !== 'scanner');
        await waitFor(
          () => running.every((s) => s.output().includes(`"event":"policy.applied","version":${next.version}`)),
          `policy version ${next.version} applied everywhere`,
          5000,
        );
      },
      async stop() {
        await bus.nc.close().catch(() => undefined);
        await stack.stop();
        await rm(stateDir, { recursive: true, force: true });
      },
    };
  } catch (err) {
    await stack.stop().catch(() => undefined);
    throw err;
  }
}
