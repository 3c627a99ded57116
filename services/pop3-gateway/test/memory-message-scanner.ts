/**
 * An in-memory MessageScanner for unit tests: no NATS, no S3, no clamd. A message containing
 * `INFECTED` is "rebuilt" with that word replaced by a notice; faults are injected per call.
 */
import { Readable } from 'node:stream';
import { TempFailError, newRef, type MessageScanner, type ScanRequest, type StoredMessage } from '@mailwarden/pipeline';

export type Fault =
  /** Throws TempFailError after reading the whole message (the scanner's deadline, a worker down). */
  | 'after-read'
  /** Throws after the first chunk, without reading the rest (S3 down mid-upload). */
  | 'mid-read'
  /** Destroys the message stream with an error, listening to nothing (stream/promises pipeline does that). */
  | 'destroy-with-error'
  /** Never settles (a stuck step the gateway must bound). */
  | 'hang'
  /** Succeeds, but open() of the stored copy fails. */
  | 'open'
  /** Succeeds, but the stored copy's stream fails after its first chunk. */
  | 'stream';

export const NOTICE = 'Mailwarden removed the attachment "virus.com" from this message.';

export class MemoryMessageScanner implements MessageScanner {
  scans: ScanRequest[] = [];
  stores = 0;
  discarded: string[] = [];
  live = new Set<string>();
  /** Faults for the next calls to scan(), in order. */
  faults: Fault[] = [];

  async scan(req: ScanRequest, raw: Readable): Promise<StoredMessage> {
    this.scans.push(req);
    const fault = this.faults.shift();
    const ref = newRef();
    if (fault === 'destroy-with-error') {
      await new Promise((r) => raw.once('data', r));
      raw.destroy(new Error('s3 put stalled'));
      throw new TempFailError('s3 put stalled', ref);
    }
    const chunks: Buffer[] = [];
    for await (const chunk of raw) {
      chunks.push(chunk as Buffer);
      if (fault === 'mid-read') {
        raw.destroy();
        throw new TempFailError('storage failed mid-upload', ref);
      }
    }
    if (fault === 'after-read') throw new TempFailError('no scan result within 100 ms', ref);
    if (fault === 'hang') return new Promise<never>(() => undefined);
    const original = Buffer.concat(chunks);
    const text = original.toString('latin1');
    const infected = text.includes('INFECTED');
    const bytes = infected ? Buffer.from(text.replaceAll('INFECTED', NOTICE), 'latin1') : original;
    return this.stored(ref, bytes, infected, fault);
  }

  async store(_req: ScanRequest, raw: Readable): Promise<StoredMessage> {
    this.stores++;
    const chunks: Buffer[] = [];
    for await (const chunk of raw) chunks.push(chunk as Buffer);
    return { ...this.stored(newRef(), Buffer.concat(chunks), false, undefined), scanned: false };
  }

  private stored(ref: string, bytes: Buffer, infected: boolean, fault: Fault | undefined): StoredMessage {
    this.live.add(ref);
    return {
      ref,
      size: bytes.length,
      removed: infected ? [{ part: '1.2', filename: 'virus.com', kind: 'infected', detail: 'Test.INFECTED' }] : [],
      subjectPrefixed: false,
      scanned: true,
      open: async () => {
        if (fault === 'open') throw new TempFailError('s3 get failed', ref);
        if (!this.live.has(ref)) throw new Error(`stored message ${ref} was discarded`);
        const size = 16 * 1024;
        const parts: Buffer[] = [];
        for (let i = 0; i < bytes.length; i += size) parts.push(bytes.subarray(i, i + size));
        if (fault === 'stream') {
          return new Readable({
            read() {
              const next = parts.shift();
              if (next && parts.length > 1) this.push(next);
              else this.destroy(new Error('s3 stream stalled'));
            },
          });
        }
        return Readable.from(parts);
      },
      discard: async () => {
        this.discarded.push(ref);
        this.live.delete(ref);
      },
    };
  }
}
