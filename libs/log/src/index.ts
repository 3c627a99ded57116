import { pino, type Logger } from 'pino';

export type { Logger };

/**
 * JSON logs; every line names its service, and callers add `ref` and a stable `event` code.
 * Written asynchronously: synchronous writes to a piped stdout showed up in the services' CPU
 * profiles (pino flushes what is buffered when the process exits).
 */
export function createLogger(service: string, level = process.env.LOG_LEVEL || 'info'): Logger {
  return pino({ name: service, level, base: { service, pid: process.pid } }, pino.destination({ dest: 1, sync: false }));
}
