#!/usr/bin/env node
/**
 * mailwarden-init: the one privileged step on the bus. Creates (or brings up to date) the streams,
 * the work-queue consumers and the KV buckets, and seeds the default policy, then exits 0.
 * Runs as the NATS user `mailwarden-init` (deploy/nats/auth.conf), the only one with the JetStream
 * API rights to create streams; the services only wait for them (waitForStreams).
 * docker-compose runs it as the one-shot `mailwarden-init` service, Kubernetes as a Job, the local
 * stack (`npm start`, tests) before the services. Settings: NATS_URL, NATS_USER, NATS_PASSWORD,
 * NATS_CA, SCAN_CACHE_TTL_MS (the scan cache bucket's TTL, fixed when the bucket is created).
 */
import { parseInteger, readSettings } from '@mailwarden/config';
import { createLogger } from '@mailwarden/log';
import { connectBus, natsSettings, type Bus } from './connect.js';
import { PolicyStore } from './policy-store.js';
import { ensureTopology } from './topology.js';

const log = createLogger('mailwarden-init');
const settings = readSettings();
const scanCacheTtlMs = parseInteger(settings.SCAN_CACHE_TTL_MS, 'SCAN_CACHE_TTL_MS', 1);

async function connectWithRetry(deadlineMs: number): Promise<Bus> {
  const until = Date.now() + deadlineMs;
  for (;;) {
    try {
      return await connectBus({ ...natsSettings(settings), name: 'mailwarden-init' });
    } catch (err) {
      // An authorization error will not go away by waiting.
      if (Date.now() > until || /authoriz|authentic/i.test((err as Error).message)) throw err;
      log.warn({ event: 'nats.unavailable', err: (err as Error).message }, 'NATS not answering yet, retrying');
      await new Promise((r) => setTimeout(r, 2000));
    }
  }
}

try {
  const bus = await connectWithRetry(120_000);
  try {
    await ensureTopology(bus.jsm, bus.kvm, { scanCacheTtlMs });
    const policy = await PolicyStore.open(bus.kvm);
    await policy.seedDefaults();
    const doc = await policy.get();
    log.info({ event: 'ready', policyVersion: doc.version }, 'streams, consumers and buckets in place');
  } finally {
    await bus.nc.close();
  }
} catch (err) {
  log.error({ event: 'init.failed', err: (err as Error).message }, `mailwarden-init failed: ${(err as Error).message}`);
  process.exitCode = 1;
}
