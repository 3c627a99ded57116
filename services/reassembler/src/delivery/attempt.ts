import type { DeliveryJob, RecipientOutcome } from '@mailwarden/contracts';
import type { ObjectStore } from '@mailwarden/storage';
import { sendTransaction, type SmtpConnectionPool } from '@mailwarden/smtp-client';

/**
 * One delivery attempt of `job` to `recipients` over a pooled session: an outcome per recipient.
 * A connection failure or a deadline is an outcome too (code 0: deferred), never an exception,
 * so the caller always has something to record.
 */
export async function attemptDelivery(pool: SmtpConnectionPool, store: ObjectStore, job: DeliveryJob, recipients: string[], beforeData?: () => Promise<void>): Promise<RecipientOutcome[]> {
  let client;
  try {
    client = await pool.acquire();
  } catch (err) {
    return recipients.map((recipient) => ({ recipient, code: 0, reply: `connection to ${pool.address} failed: ${(err as Error).message}` }));
  }
  try {
    const message = await store.get(job.key);
    const report = await sendTransaction(client, { from: job.mailFrom, to: recipients }, message, beforeData);
    pool.release(client, true);
    return report.outcomes;
  } catch (err) {
    pool.release(client, false);
    // After the final dot without a reply, upstream may have the message: retried like any
    // failure (a possible duplicate, the one case SMTP cannot close: RFC 5321 6.1).
    return recipients.map((recipient) => ({ recipient, code: 0, reply: `delivery to ${pool.address} failed: ${(err as Error).message}` }));
  }
}
