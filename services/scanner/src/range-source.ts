import { Readable } from 'node:stream';
import type { ByteSource } from '@mailwarden/analysis';
import type { ObjectStore } from '@mailwarden/storage';

const BLOCK = 1024 * 1024;
/** Blocks kept: the analysis reads mostly forward, with a few jumps back to part starts. */
const CACHED_BLOCKS = 4;

/**
 * raw.eml read by range, for messages too large to hold: memory stays at a few blocks whatever
 * the message size; each block costs one ranged GET (an analysis reads a large message two or
 * three times: structure, then each content it decodes).
 */
export class RangeSource implements ByteSource {
  private readonly blocks = new Map<number, Promise<Buffer>>();

  constructor(
    private readonly store: ObjectStore,
    private readonly key: string,
    readonly size: number,
  ) {}

  async read(start: number, end: number): Promise<Buffer> {
    end = Math.min(end, this.size);
    if (end <= start) return Buffer.alloc(0);
    const first = Math.floor(start / BLOCK);
    const last = Math.floor((end - 1) / BLOCK);
    const pieces: Buffer[] = [];
    for (let b = first; b <= last; b++) {
      const block = await this.block(b);
      const from = b === first ? start - b * BLOCK : 0;
      const to = b === last ? end - b * BLOCK : block.length;
      pieces.push(block.subarray(from, to));
    }
    return pieces.length === 1 ? pieces[0]! : Buffer.concat(pieces);
  }

  stream(start: number, end: number): Readable {
    return Readable.from(this.blocksOf(start, end));
  }

  private async *blocksOf(start: number, end: number): AsyncGenerator<Buffer> {
    for (let at = start; at < end; ) {
      const next = Math.min(end, (Math.floor(at / BLOCK) + 1) * BLOCK);
      yield await this.read(at, next);
      at = next;
    }
  }

  private block(index: number): Promise<Buffer> {
    const cached = this.blocks.get(index);
    if (cached) {
      // most recently used last
      this.blocks.delete(index);
      this.blocks.set(index, cached);
      return cached;
    }
    const loading = (async () => {
      const chunks: Buffer[] = [];
      const start = index * BLOCK;
      for await (const c of await this.store.getRange(this.key, start, Math.min(this.size, start + BLOCK))) chunks.push(c as Buffer);
      return Buffer.concat(chunks);
    })();
    loading.catch(() => this.blocks.delete(index));
    this.blocks.set(index, loading);
    while (this.blocks.size > CACHED_BLOCKS) this.blocks.delete(this.blocks.keys().next().value!);
    return loading;
  }
}
