/**
 * Wait before attempt `attempt + 1` of a deferred delivery: `minMs` after the first attempt,
 * doubled each time, at most `maxMs` (with the defaults: 1, 2, 4 … 64 min, then hourly).
 * A little jitter spreads a queue that failed all at once (upstream down) over the interval.
 */
export function retryDelay(attempt: number, minMs: number, maxMs: number, jitter = Math.random()): number {
  const base = Math.min(maxMs, minMs * 2 ** Math.max(0, Math.min(30, attempt - 1)));
  return Math.round(Math.min(maxMs, base * (0.9 + 0.2 * jitter)));
}
