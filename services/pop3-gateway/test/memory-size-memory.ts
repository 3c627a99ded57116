/** An in-memory DeliveredSizeMemory for unit tests (the gateway wires the `mw-pop3-sizes` KV bucket), with faults. */
import type { DeliveredSizeMemory } from '../src/delivered-size-memory.js';

export class MemorySizeMemory implements DeliveredSizeMemory {
  readonly entries = new Map<string, number>();
  gets = 0;
  puts = 0;
  /** Every call fails (`throw`) or never settles (`hang`) while set. */
  fault: 'throw' | 'hang' | undefined;

  async get(key: string): Promise<number | undefined> {
    this.gets++;
    await this.faulted();
    return this.entries.get(key);
  }

  async put(key: string, size: number): Promise<void> {
    this.puts++;
    await this.faulted();
    this.entries.set(key, size);
  }

  private faulted(): Promise<void> {
    if (this.fault === 'throw') return Promise.reject(new Error('kv down'));
    if (this.fault === 'hang') return new Promise<void>(() => undefined);
    return Promise.resolve();
  }
}
