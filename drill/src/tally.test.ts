import { test } from 'node:test';
import assert from 'node:assert/strict';
import { tally, type Delivery } from './tally.js';
import type { AttemptRecord, DrillMessage } from './sender.js';

const attempt = (n: number, startMs: number, outcome: AttemptRecord['outcome'], reply: string, stage: AttemptRecord['stage'] = 'final'): AttemptRecord => ({ n, startMs, endMs: startMs + 50, outcome, stage, reply });
const message = (id: string, attempts: AttemptRecord[], state: DrillMessage['state'] = 'accepted'): DrillMessage => ({ i: 0, id, messageId: `<${id}>`, infected: false, sha256: 'sent', size: 1, attempts, state });
const copy = (id: string, mtimeMs: number, ref?: string): Delivery => ({ file: `${id}-${mtimeMs}`, drillId: id, mtimeMs, size: 1, sha256: ref ? 'with-received' : 'sent', bodySha256: 'sent', ref, eicar: false, notice: false });
const verdicts = (t: ReturnType<typeof tally>) => Object.fromEntries(t.perMessage.map((m) => [m.id, m.verdict]));

test('proxy mode: copies are attributed by time; a copy from an attempt whose final reply was lost is inherent', () => {
  const msgs = [
    message('once', [attempt(1, 100, '250', '250 ok')]),
    message('lostreply', [attempt(1, 100, 'conn', 'connection closed'), attempt(2, 2000, '250', '250 ok')]),
    message('lost', [attempt(1, 100, '250', '250 ok')]),
    message('twice', [attempt(1, 100, '250', '250 ok')]),
  ];
  const t = tally(msgs, [copy('once', 150), copy('lostreply', 140), copy('lostreply', 2100), copy('twice', 150), copy('twice', 160)]);
  assert.deepEqual(verdicts(t), { once: 'delivered-once', lostreply: 'duplicate-after-lost-reply', lost: 'lost', twice: 'duplicated' });
});

test('queue mode: copies are attributed by the reference of their Received line, not by time', () => {
  const msgs = [
    // delivered long after the 250: by time it would still be attempt 1's
    message('late', [attempt(1, 100, '250', '250 2.0.0 Ok: queued as R1')]),
    // the first attempt queued R2 but its 250 was lost; the retry queued R3: two copies, inherent
    message('lostreply', [attempt(1, 100, 'conn', 'connection closed'), attempt(2, 2000, '250', '250 2.0.0 Ok: queued as R3')]),
    // a 451 whose message was queued anyway: a violation
    message('tempfail', [attempt(1, 100, '4xx', '451 4.3.0 Temporary failure (ref R4)'), attempt(2, 2000, '250', '250 2.0.0 Ok: queued as R5')]),
    // the same reference delivered twice: inherent only as far as the record counts interrupted attempts
    message('interrupted', [attempt(1, 100, '250', '250 2.0.0 Ok: queued as R6')]),
    message('dup', [attempt(1, 100, '250', '250 2.0.0 Ok: queued as R7')]),
  ];
  const copies = [
    copy('late', 60_000, 'R1'),
    copy('lostreply', 3000, 'R3'),
    copy('lostreply', 5000, 'R2'),
    copy('tempfail', 3000, 'R4'),
    copy('tempfail', 3100, 'R5'),
    copy('interrupted', 500, 'R6'),
    copy('interrupted', 900, 'R6'),
    copy('dup', 500, 'R7'),
    copy('dup', 900, 'R7'),
  ];
  const t = tally(msgs, copies, { queue: { interrupted: (ref) => (ref === 'R6' ? 1 : 0) } });
  assert.deepEqual(verdicts(t), { late: 'delivered-once', lostreply: 'duplicate-after-lost-reply', tempfail: 'tempfail-delivered', interrupted: 'duplicate-after-interrupted-delivery', dup: 'duplicated' });
  assert.equal(t.cleanAltered, 0, 'the gateway Received line is not an alteration in queue mode');
});
