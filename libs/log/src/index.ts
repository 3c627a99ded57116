import { pino, type Logger } from 'pino';

export type { Logger };

/** JSON logs; every line names its service, and callers add `ref` and a stable `event` code. */
export function createLogger(service: string, level = process.env.LOG_LEVEL ?? 'info'): Logger {
  return pino({ name: service, level, base: { service, pid: process.pid } });
}
