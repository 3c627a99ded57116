/** The first rescan of a queued message whose scan failed comes this long after the failure. */
export const RESCAN_MIN_MS = 5_000;
/** Rescans of a message that keeps failing are never further apart than this. */
export const RESCAN_MAX_MS = 10 * 60_000;

/**
 * How long a failed scan of a queued message waits before its rescan: a tenth of the message's
 * age when it failed (5 s at first, 6 min after an hour of failures, at most 10 min). An engine
 * that is down for hours then costs each queued message a few attempts an hour, not four every
 * few seconds (each with its log lines), and a short outage still clears within seconds.
 */
export function rescanDelayMs(receivedAt: string, failedAt: string): number {
  const age = Math.max(0, Date.parse(failedAt) - Date.parse(receivedAt));
  return Math.min(RESCAN_MAX_MS, Math.max(RESCAN_MIN_MS, Math.round(age / 10)));
}

/** Thrown by the hand-off of a failed scan that is not due for its rescan yet: its verdict is held (nak) this long. */
export class RescanLater extends Error {
  override name = 'RescanLater';
  constructor(readonly delayMs: number) {
    super(`rescan due in ${delayMs} ms`);
  }
}
