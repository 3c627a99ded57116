import type { Envelope } from '@mailwarden/contracts';
import type { ScanRequest } from './message-scanner.js';

/** The envelope of a message just stored as `rawKey` (size and sha256 as the gateway counted them). */
export function envelopeFor(ref: string, req: ScanRequest, raw: { key: string; size: number; sha256: string }): Envelope {
  return {
    ref,
    protocol: req.protocol,
    direction: req.direction,
    receivedAt: new Date().toISOString(),
    mailFrom: req.mailFrom,
    rcptTo: req.rcptTo,
    rawKey: raw.key,
    rawSize: raw.size,
    rawSha256: raw.sha256,
  };
}
