import { randomBytes } from 'node:crypto';

/** Time-ordered, unique, safe in NATS subjects and S3 keys; quoted to senders in 451 replies. */
export function newRef(): string {
  return Date.now().toString(36) + randomBytes(6).toString('hex');
}
