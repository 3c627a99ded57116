import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { Logger } from '@mailwarden/log';
import { logServerError } from '../src/server-error.js';

function recordingLog() {
  const lines: { level: string; event: unknown }[] = [];
  const at = (level: string) => (obj: { event?: unknown }) => lines.push({ level, event: obj.event });
  return { lines, log: { info: at('info'), error: at('error') } as unknown as Logger };
}

test('a client resetting its connection is logged at info, anything else at error', () => {
  const { lines, log } = recordingLog();
  logServerError(log, Object.assign(new Error('read ECONNRESET'), { code: 'ECONNRESET' }));
  logServerError(log, Object.assign(new Error('write EPIPE'), { code: 'EPIPE' }));
  logServerError(log, Object.assign(new Error('listen EADDRINUSE'), { code: 'EADDRINUSE' }));
  logServerError(log, new Error('no code'));
  assert.deepEqual(lines, [
    { level: 'info', event: 'smtp.client_connection_error' },
    { level: 'info', event: 'smtp.client_connection_error' },
    { level: 'error', event: 'smtp.server_error' },
    { level: 'error', event: 'smtp.server_error' },
  ]);
});
