/**
 * The SMTP client of the project: the smtp-gateway's upstream leg (command by command, mirrored)
 * and whole-message delivery (the config service's quarantine release). Deadlines on every reply.
 */
export * from './smtp-reply.js';
export * from './upstream-smtp-client.js';
export * from './deliver-message.js';
export * from './transaction.js';
export * from './connection-pool.js';
