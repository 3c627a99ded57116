import { pino, type Logger } from 'pino';

export type { Logger };

/**
 * JSON logs; every line names its service, and callers add `ref` and a stable `event` code.
 * Written asynchronously: synchronous writes to a piped stdout showed up in the services' CPU
 * profiles (pino flushes what is buffered when the process exits).
 *
 * The `"event":"ready"` line (logged at info) is printed at every log level: launchers
 * (libs/local-stack, `npm start`) wait for it, and `LOG_LEVEL=warn` must not make a service
 * look as if it never started.
 */
export function createLogger(service: string, level = process.env.LOG_LEVEL || 'info'): Logger {
  const options = { name: service, base: { service, pid: process.pid } };
  const dest = pino.destination({ dest: 1, sync: false });
  const log = pino({ ...options, level }, dest);
  if (!log.isLevelEnabled('info')) {
    const readyLog = pino({ ...options, level: 'info' }, dest);
    const quiet = log.info.bind(log);
    log.info = ((obj: unknown, ...rest: unknown[]): void => {
      if (obj !== null && typeof obj === 'object' && (obj as { event?: unknown }).event === 'ready') {
        (readyLog.info as (o: unknown, ...r: unknown[]) => void)(obj, ...rest);
      } else {
        (quiet as (o: unknown, ...r: unknown[]) => void)(obj, ...rest);
      }
    }) as Logger['info'];
  }
  return log;
}
