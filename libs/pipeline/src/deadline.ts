/**
 * A deadline that starts later than it is made (when the last byte of a message is in) and
 * covers every step after that. `race` makes a step lose to it; `signal` aborts on expiry or
 * `cancel()`, so the work still in flight (an S3 request) stops too.
 */
export class Deadline {
  private readonly ac = new AbortController();
  private readonly expired: Promise<never>;
  private timer: NodeJS.Timeout | undefined;
  private endsAt: number | undefined;

  constructor(
    readonly ms: number,
    private readonly what: string,
  ) {
    this.expired = new Promise<never>((_, reject) => {
      this.ac.signal.addEventListener('abort', () => reject(this.ac.signal.reason as Error), { once: true });
    });
    this.expired.catch(() => undefined);
  }

  get signal(): AbortSignal {
    return this.ac.signal;
  }

  /** Starts the clock (once; later calls change nothing). */
  start(): void {
    if (this.endsAt !== undefined || this.ac.signal.aborted) return;
    this.endsAt = Date.now() + this.ms;
    this.timer = setTimeout(() => this.ac.abort(new Error(`${this.what}: not done within ${this.ms} ms of the end of the message`)), this.ms);
  }

  /** Time left; the whole deadline while it has not started. */
  remaining(): number {
    return this.endsAt === undefined ? this.ms : Math.max(0, this.endsAt - Date.now());
  }

  race<T>(step: Promise<T>): Promise<T> {
    return Promise.race([step, this.expired]);
  }

  /** Gives up: whatever still runs under `signal` stops. */
  cancel(): void {
    clearTimeout(this.timer);
    if (!this.ac.signal.aborted) this.ac.abort(new Error(`${this.what}: cancelled`));
  }

  /** Done: the clock stops, nothing is aborted. */
  clear(): void {
    clearTimeout(this.timer);
  }
}
