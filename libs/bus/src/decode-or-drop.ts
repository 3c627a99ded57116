import type { JsMsg } from '@nats-io/jetstream';
import type { TSchema, Static } from '@sinclair/typebox';
import { decode } from '@mailwarden/contracts';
import type { Logger } from '@mailwarden/log';

/**
 * A work message decoded against its contract, or undefined after it was logged and terminated:
 * a message that does not decode never will, so redelivering it would only loop (a poison message).
 */
export function decodeOrDrop<T extends TSchema>(schema: T, msg: JsMsg, log: Logger, what: { event: string; name: string }): Static<T> | undefined {
  try {
    return decode(schema, msg.data);
  } catch (err) {
    log.error({ event: what.event, subject: msg.subject, err }, `undecodable ${what.name} dropped`);
    msg.term();
    return undefined;
  }
}
