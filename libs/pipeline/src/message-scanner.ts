import type { Readable } from 'node:stream';
import type { Direction, Protocol, RemovedPart } from '@mailwarden/contracts';

export interface ScanRequest {
  protocol: Protocol;
  direction: Direction;
  mailFrom: string;
  rcptTo: string[];
  /** Queue mode: false when the policy does not scan this traffic (the message is queued unscanned). */
  scan?: boolean;
}

/** A message ready to be forwarded: the original or the rebuilt one, streamed back from storage. */
export interface StoredMessage {
  ref: string;
  size: number;
  removed: RemovedPart[];
  subjectPrefixed: boolean;
  /** false when the message was stored but not scanned (scanning off for this protocol). */
  scanned: boolean;
  open(): Promise<Readable>;
  /** Removes every object of the message; call once the session is done with it. */
  discard(): Promise<void>;
}

/**
 * The port gateways use. Protocol code knows nothing of NATS or S3; tests may supply an in-memory one.
 * Both methods throw TempFailError on any internal failure or deadline.
 */
export interface MessageScanner {
  scan(req: ScanRequest, raw: Readable): Promise<StoredMessage>;
  store(req: ScanRequest, raw: Readable): Promise<StoredMessage>;
}
