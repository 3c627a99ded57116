/** Moved to @mailwarden/testkit (load-messages.ts): the fault drill builds its messages the same way. */
export { MessageFactory, massMailing, type BenchMessage } from '@mailwarden/testkit';
