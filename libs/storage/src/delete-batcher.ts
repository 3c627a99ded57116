/**
 * Collects object keys to delete from many messages and removes them in one bulk request every
 * `intervalMs` (or at `maxKeys`, S3's limit per DeleteObjects): one request per batch instead of
 * one or two per message. Each caller's promise settles with its batch.
 */
export class DeleteBatcher {
  private keys: string[] = [];
  private waiters: { resolve: () => void; reject: (err: Error) => void }[] = [];
  private timer: NodeJS.Timeout | undefined;

  constructor(
    private readonly removeNow: (keys: string[]) => Promise<void>,
    private readonly intervalMs = 200,
    private readonly maxKeys = 1000,
  ) {}

  add(keys: string[]): Promise<void> {
    if (!keys.length) return Promise.resolve();
    return new Promise((resolve, reject) => {
      this.keys.push(...keys);
      this.waiters.push({ resolve, reject });
      if (this.keys.length >= this.maxKeys) void this.flush();
      else this.timer ??= setTimeout(() => void this.flush(), this.intervalMs);
    });
  }

  /** Deletes what is queued now (also used at shutdown). */
  async flush(): Promise<void> {
    clearTimeout(this.timer);
    this.timer = undefined;
    const keys = this.keys.splice(0);
    const waiters = this.waiters.splice(0);
    if (!keys.length) return;
    try {
      for (let i = 0; i < keys.length; i += this.maxKeys) await this.removeNow(keys.slice(i, i + this.maxKeys));
      for (const w of waiters) w.resolve();
    } catch (err) {
      for (const w of waiters) w.reject(err as Error);
    }
  }
}
