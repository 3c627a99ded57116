/**
 * An in-memory MessageScanner for unit tests of the SMTP proxy: no NATS, no S3, no clamd. It
 * counts calls in flight, so a test can tell that no handler was left waiting.
 */
import { Readable } from 'node:stream';
import { newRef, type MessageScanner, type ScanRequest, type StoredMessage } from '@mailwarden/pipeline';

export class MemoryMessageScanner implements MessageScanner {
  requests: ScanRequest[] = [];
  inFlight = 0;
  failed = 0;
  discarded = 0;
  /** How long a "scan" takes after the message was read (a slow clamd). */
  delayMs = 0;
  /** The scan fails with this once the message was read (the bus, S3 or clamd down). */
  failWith: Error | undefined;
  /** The copy to deliver, as the reassembler would rebuild it (default: the message as received). */
  rebuild: (raw: Buffer) => Buffer = (raw) => raw;

  scan(req: ScanRequest, raw: Readable): Promise<StoredMessage> {
    return this.keep(req, raw, true);
  }

  store(req: ScanRequest, raw: Readable): Promise<StoredMessage> {
    return this.keep(req, raw, false);
  }

  private async keep(req: ScanRequest, raw: Readable, scanned: boolean): Promise<StoredMessage> {
    this.requests.push(req);
    this.inFlight++;
    try {
      const chunks: Buffer[] = [];
      for await (const chunk of raw) chunks.push(chunk as Buffer);
      const bytes = this.rebuild(Buffer.concat(chunks));
      if (this.delayMs) await new Promise((r) => setTimeout(r, this.delayMs));
      if (this.failWith) throw this.failWith;
      const ref = newRef();
      return {
        ref,
        size: bytes.length,
        removed: [],
        subjectPrefixed: false,
        scanned,
        open: async () => {
          const size = 64 * 1024;
          const parts: Buffer[] = [];
          for (let i = 0; i < bytes.length; i += size) parts.push(bytes.subarray(i, i + size));
          return Readable.from(parts);
        },
        discard: async () => {
          this.discarded++;
        },
      };
    } catch (err) {
      this.failed++;
      throw err;
    } finally {
      this.inFlight--;
    }
  }
}
