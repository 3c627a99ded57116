import type { Readable } from 'node:stream';

/** The only way services touch object storage; protocol code gets it injected. */
export interface ObjectStore {
  /**
   * Streams `body` (any size) into `key`. `signal` cancels it, the S3 request in flight included
   * (the body going away before its end does too).
   */
  put(key: string, body: Readable, opts?: { signal?: AbortSignal }): Promise<{ size: number }>;
  get(key: string): Promise<Readable>;
  /** Bytes [start, end) of `key` (end exclusive). */
  getRange(key: string, start: number, end: number): Promise<Readable>;
  stat(key: string): Promise<{ size: number }>;
  remove(keys: string[]): Promise<void>;
  /** Server-side copy of `from` to `to` (no bytes pass through the service). */
  copy(from: string, to: string): Promise<void>;
  /** Every object whose key starts with `prefix` (recursively), in key order. */
  list(prefix: string): Promise<StoredObject[]>;
}

/** One object as a listing shows it. */
export interface StoredObject {
  key: string;
  size: number;
  lastModified: Date;
}

export class StorageError extends Error {
  override name = 'StorageError';
}
