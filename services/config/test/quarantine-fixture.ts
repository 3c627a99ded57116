/** The quarantine over real components, with three entries written the way the reassembler writes them. */
import { createHash } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import type { AddressInfo } from 'node:net';
import type { TestContext } from 'node:test';
import { SMTPServer } from 'smtp-server';
import type { FastifyInstance } from 'fastify';
import type { Bus } from '@mailwarden/bus';
import { ObjectKeys, type QuarantineEntry } from '@mailwarden/contracts';
import { parseClamdAddresses, startClamd, ClamdClient } from '@mailwarden/clamd';
import { startS3 } from '@mailwarden/local-stack';
import { createLogger } from '@mailwarden/log';
import { deliverMessage } from '@mailwarden/smtp-client';
import { MinioStore } from '@mailwarden/storage';
import { EICAR, composeMessage } from '@mailwarden/testkit';
import { ActivityLog, EventFeed, Quarantine, buildApp, clamdRescan } from '../src/index.js';
import { TOKEN, build } from './harness.js';

const log = createLogger('quarantine-test', 'silent');

export interface Received {
  from: string;
  to: string[];
  data: Buffer;
}

export async function startSink(t: TestContext): Promise<{ port: number; received: Received[] }> {
  const received: Received[] = [];
  const server = new SMTPServer({
    authOptional: true,
    disabledCommands: ['STARTTLS', 'AUTH'],
    logger: false,
    onRcptTo(address, _session, cb) {
      if (address.address.startsWith('nobody@')) return cb(Object.assign(new Error('no such user'), { responseCode: 550 }));
      cb();
    },
    onData(stream, session, cb) {
      const chunks: Buffer[] = [];
      stream.on('data', (c: Buffer) => chunks.push(c));
      stream.on('end', () => {
        received.push({ from: session.envelope.mailFrom ? session.envelope.mailFrom.address : '', to: session.envelope.rcptTo.map((r) => r.address), data: Buffer.concat(chunks) });
        cb();
      });
    },
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  t.after(() => new Promise<void>((r) => server.close(() => r())));
  return { port: (server.server.address() as AddressInfo).port, received };
}

export async function putEntry(store: MinioStore, entry: QuarantineEntry, raw: Buffer): Promise<void> {
  await store.put(ObjectKeys.quarantineRaw(entry.ref), Readable.from([raw]));
  const meta = Buffer.from(JSON.stringify(entry));
  await store.put(ObjectKeys.quarantineMeta(entry.ref), Readable.from([meta]));
}

export function entryFor(ref: string, raw: Buffer, over: Partial<QuarantineEntry> = {}): QuarantineEntry {
  return {
    ref,
    messageRef: ref,
    time: new Date().toISOString(),
    protocol: 'smtp',
    direction: 'inbound',
    sender: 'billing@supplier.example',
    recipients: ['anna@example.test'],
    subject: 'Invoice',
    size: raw.length,
    sha256: createHash('sha256').update(raw).digest('hex'),
    parts: [{ path: '2', filename: 'eicar.com', contentType: 'application/octet-stream', size: EICAR.length, sha256: createHash('sha256').update(EICAR).digest('hex'), verdict: 'infected', signature: 'Eicar-Test-Signature' }],
    releases: [],
    ...over,
  };
}

export interface QuarantineFixture {
  app: FastifyInstance;
  bus: Bus;
  store: MinioStore;
  quarantine: Quarantine;
  activity: ActivityLog;
  sink: { port: number; received: Received[] };
  eicarMail: Buffer;
  zipMail: Buffer;
  setRetention(days: number): void;
}

const DAY = 86_400_000;

/**
 * s3rver, clamd, an SMTP sink, NATS and the app with the quarantine routes; entries q1 (EICAR,
 * 3 days old), q2 (encrypted zip, 1 day, legal@partner.example → bob) and q3 (EICAR, a minute, → carol).
 */
export async function startQuarantineFixture(t: TestContext): Promise<QuarantineFixture> {
  const dir = await mkdtemp(join(tmpdir(), 'mw-quarantine-api-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  const s3 = await startS3({ stateDir: dir, buckets: ['mailwarden'] });
  t.after(() => s3.stop());
  const clamd = await startClamd({ stateDir: join(dir, 'clamd') });
  t.after(() => clamd.stop());
  const sink = await startSink(t);
  const store = new MinioStore({ endpoint: s3.endpoint, accessKey: s3.accessKey, secretKey: s3.secretKey, bucket: 'mailwarden' });
  t.after(() => store.close());

  let retention = 30;
  const harness = await build(t);
  const { bus } = harness;
  const quarantine = new Quarantine({
    store,
    deliver: (d) => deliverMessage({ host: '127.0.0.1', port: sink.port, connectTimeoutMs: 5000, commandTimeoutMs: 10_000 }, { ...d, helloName: 'test.local' }),
    rescan: clamdRescan(new ClamdClient({ addresses: parseClamdAddresses(clamd.address), connectTimeoutMs: 2000, scanTimeoutMs: 30_000 })),
    audit: async (event) => {
      await bus.js.publish(`mw.event.${event.kind}`, JSON.stringify(event));
    },
    retentionDays: () => retention,
    log,
  });
  const activity = new ActivityLog();
  const app = await buildApp({ policyStore: harness.store, activity, engine: { status: async () => ({ reachable: true, checkedAt: '', engines: [] }) }, adminToken: TOKEN, quarantine: { quarantine, retentionDays: () => retention } });
  t.after(() => app.close());
  const stop = new AbortController();
  t.after(() => stop.abort());
  await EventFeed.start({ js: bus.js, jsm: bus.jsm, activity, log, signal: stop.signal });

  const eicarMail = composeMessage({ to: 'anna@example.test', subject: 'Invoice', attachments: [{ filename: 'eicar.com', data: EICAR }] });
  const zipMail = composeMessage({ to: 'bob@example.test', subject: 'Contract', attachments: [{ filename: 'contract.zip', data: Buffer.from('not really a zip') }] });
  const day = DAY;
  await putEntry(store, entryFor('q1aaaaaaaaaa', eicarMail, { time: new Date(Date.now() - 3 * day).toISOString() }), eicarMail);
  await putEntry(
    store,
    entryFor('q2bbbbbbbbbb', zipMail, {
      time: new Date(Date.now() - day).toISOString(),
      sender: 'legal@partner.example',
      recipients: ['bob@example.test'],
      subject: 'Contract',
      parts: [{ path: '2', filename: 'contract.zip', contentType: 'application/zip', size: 16, sha256: '0'.repeat(64), verdict: 'unscannable', reason: 'encrypted', signature: 'Heuristics.Encrypted.Zip' }],
    }),
    zipMail,
  );
  await putEntry(store, entryFor('q3cccccccccc', eicarMail, { time: new Date(Date.now() - 60_000).toISOString(), recipients: ['carol@example.test'] }), eicarMail);

  return { app, bus, store, quarantine, activity, sink, eicarMail, zipMail, setRetention: (d) => (retention = d) };
}
