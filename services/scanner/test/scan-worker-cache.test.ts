/**
 * handleJob with the scan cache: jobs pulled from the real MW_JOBS work queue (nats-server),
 * messages from an in-memory object store, verdicts read back from MW_VERDICTS; a fake clamd counts
 * the scans. A mass mailing (the same attachment in many messages) costs one scan.
 */
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { after, before, describe, it } from 'node:test';
import { SCANNER_MAX_DELIVER, connectBus, ensureTopology, type Bus } from '@mailwarden/bus';
import { ClamdClient } from '@mailwarden/clamd';
import { Consumers, MessageVerdict, Streams, Subjects, decode, type Envelope } from '@mailwarden/contracts';
import { createLogger } from '@mailwarden/log';
import { startNats, type RunningNats } from '@mailwarden/local-stack';
import type { ObjectStore } from '@mailwarden/storage';
import { ScanCache } from '../src/scan-cache.js';
import { handleJob } from '../src/scan-worker.js';
import { startFakeClamd, type FakeClamd } from './fake-clamd.js';

const log = createLogger('scan-worker-test', 'silent');

class MemoryStore implements ObjectStore {
  readonly objects = new Map<string, Buffer>();
  async put(key: string, body: Readable): Promise<{ size: number }> {
    const chunks: Buffer[] = [];
    for await (const c of body) chunks.push(c as Buffer);
    this.objects.set(key, Buffer.concat(chunks));
    return { size: this.objects.get(key)!.length };
  }
  async get(key: string): Promise<Readable> {
    const b = this.objects.get(key);
    if (!b) throw new Error(`no object ${key}`);
    return Readable.from([b]);
  }
  async getRange(key: string, start: number, end: number): Promise<Readable> {
    return Readable.from([(await this.bytes(key)).subarray(start, end)]);
  }
  private async bytes(key: string): Promise<Buffer> {
    const b = this.objects.get(key);
    if (!b) throw new Error(`no object ${key}`);
    return b;
  }
  async stat(key: string): Promise<{ size: number }> {
    return { size: this.objects.get(key)?.length ?? 0 };
  }
  async remove(keys: string[]): Promise<void> {
    for (const k of keys) this.objects.delete(k);
  }
  async copy(from: string, to: string): Promise<void> {
    this.objects.set(to, await this.bytes(from));
  }
  async list(prefix: string): Promise<{ key: string; size: number; lastModified: Date }[]> {
    return [...this.objects].filter(([k]) => k.startsWith(prefix)).map(([key, b]) => ({ key, size: b.length, lastModified: new Date() }));
  }
}

describe('handleJob with the scan cache', () => {
  let dir: string;
  let nats: RunningNats;
  let bus: Bus;
  let fake: FakeClamd;

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'mw-scan-worker-'));
    nats = await startNats({ stateDir: dir, auth: false });
    bus = await connectBus({ url: nats.url, name: 'scan-worker-test' });
    await ensureTopology(bus.jsm, bus.kvm);
    fake = await startFakeClamd();
  });
  after(async () => {
    await fake?.close();
    await bus?.nc.close();
    await nats?.stop();
    await rm(dir, { recursive: true, force: true });
  });

  it('a mass mailing with one attachment costs one scan; every message still gets its verdict', async () => {
    const store = new MemoryStore();
    const clamd = new ClamdClient({ addresses: [fake.address], scanTimeoutMs: 5000 });
    const cache = await ScanCache.open({ kvm: bus.kvm, clamd, log, bucket: 'worker-test-cache' });
    try {
      fake.reply = (c) => (c.includes('INFECTED') ? { found: 'Mailwarden.Test.EICAR.UNOFFICIAL' } : 'OK');
      const attachment = Buffer.concat([randomBytes(20_000), Buffer.from('INFECTED')]);
      const refs = Array.from({ length: 20 }, (_, i) => `massmail${String(i).padStart(4, '0')}`);
      for (const ref of refs) {
        const raw = Buffer.from(
          [
            'From: a@example.com',
            'To: b@example.com',
            `Subject: offer ${ref}`,
            'MIME-Version: 1.0',
            'Content-Type: multipart/mixed; boundary="b"',
            '',
            '--b',
            'Content-Type: text/plain',
            '',
            `Dear customer ${ref}`,
            '--b',
            'Content-Type: application/pdf; name="offer.pdf"',
            'Content-Transfer-Encoding: base64',
            '',
            attachment.toString('base64').replace(/.{76}/g, '$&\r\n'),
            '--b--',
            '',
          ].join('\r\n'),
        );
        const key = `msg/${ref}/raw.eml`;
        store.objects.set(key, raw);
        const job: Envelope = { ref, protocol: 'smtp', direction: 'inbound', receivedAt: new Date().toISOString(), mailFrom: 'a@example.com', rcptTo: ['b@example.com'], rawKey: key, rawSize: raw.length, rawSha256: createHash('sha256').update(raw).digest('hex') };
        await bus.js.publish(Subjects.job(ref), JSON.stringify(job), { msgID: `job-${ref}` });
      }
      const consumer = await bus.js.consumers.get(Streams.jobs, Consumers.scanners);
      const batch = await consumer.fetch({ max_messages: refs.length, expires: 2000 });
      const handled: Promise<void>[] = [];
      for await (const msg of batch) {
        handled.push(handleJob({ bus, store, clamd, log, cache }, msg));
        if (handled.length === refs.length) break;
      }
      await Promise.all(handled);
      await cache.flush();

      // one scan per unique text part (too small for the cache), one for the attachment the whole mailing shares
      assert.equal(fake.scans, refs.length + 1, 'the shared attachment is scanned once');
      assert.equal(cache.stats.misses, 1);
      assert.equal(cache.stats.hits + cache.stats.coalesced, refs.length - 1);

      const verdicts = await bus.js.consumers.get(Streams.verdicts, Consumers.reassemblers);
      const seen = new Map<string, MessageVerdict>();
      const vbatch = await verdicts.fetch({ max_messages: refs.length, expires: 2000 });
      for await (const m of vbatch) {
        const v = decode(MessageVerdict, m.data);
        seen.set(v.envelope.ref, v);
        m.ack();
        if (seen.size === refs.length) break;
      }
      assert.deepEqual([...seen.keys()].sort(), refs);
      for (const v of seen.values()) {
        assert.equal(v.outcome, 'scanned');
        const pdf = v.parts.find((p) => p.filename === 'offer.pdf');
        assert.equal(pdf?.verdict.kind, 'infected');
        assert.equal(pdf?.verdict.detail, 'Mailwarden.Test.EICAR.UNOFFICIAL');
        assert.equal(v.parts.find((p) => p.path === '1.1')?.verdict.kind, 'clean');
      }
    } finally {
      cache.close();
    }
  });

  it('a job whose every attempt died with its worker is answered `error`, never dropped by JetStream', async () => {
    // A consumer made by an older version capped deliveries: ensureTopology lifts the cap.
    await bus.jsm.consumers.update(Streams.jobs, Consumers.scanners, { max_deliver: SCANNER_MAX_DELIVER });
    await ensureTopology(bus.jsm, bus.kvm);
    assert.equal((await bus.jsm.consumers.info(Streams.jobs, Consumers.scanners)).config.max_deliver, -1);

    const store = new MemoryStore();
    const clamd = new ClamdClient({ addresses: [fake.address], scanTimeoutMs: 5000 });
    const ref = 'diedeverytime';
    const raw = Buffer.from('From: a@example.com\r\nSubject: x\r\n\r\nhello\r\n');
    store.objects.set(`msg/${ref}/raw.eml`, raw);
    const job: Envelope = { ref, protocol: 'smtp', direction: 'inbound', receivedAt: new Date().toISOString(), mailFrom: 'a@example.com', rcptTo: ['b@example.com'], rawKey: `msg/${ref}/raw.eml`, rawSize: raw.length, rawSha256: createHash('sha256').update(raw).digest('hex'), delivery: 'queue' };
    await bus.js.publish(Subjects.job(ref), JSON.stringify(job), { msgID: `job-${ref}` });
    const consumer = await bus.js.consumers.get(Streams.jobs, Consumers.scanners);
    // Each attempt taken and never answered, as by a worker killed mid-scan (nak stands in for the ack wait).
    for (let attempt = 1; attempt <= SCANNER_MAX_DELIVER; attempt++) {
      const m = await consumer.next({ expires: 3000 });
      assert.ok(m, `attempt ${attempt} delivered`);
      assert.equal(m.info.deliveryCount, attempt);
      m.nak();
    }
    const last = await consumer.next({ expires: 3000 });
    assert.ok(last, 'delivered once more after the last attempt died');
    const scansBefore = fake.scans;
    await handleJob({ bus, store, clamd, log }, last);
    assert.equal(fake.scans, scansBefore, 'not analysed again');
    const verdicts = await bus.js.consumers.get(Streams.verdicts, Consumers.reassemblers);
    for (;;) {
      const v = await verdicts.next({ expires: 3000 });
      assert.ok(v, 'a verdict was published');
      v.ack();
      const verdict = decode(MessageVerdict, v.data);
      if (verdict.envelope.ref !== ref) continue;
      assert.equal(verdict.outcome, 'error');
      break;
    }
  });
});
