import { Writable } from 'node:stream';

/** Copies every chunk to several streams and only asks for more when all of them drained. */
export class Tee extends Writable {
  constructor(private readonly outputs: Writable[]) {
    super();
  }
  override _write(chunk: Buffer, _enc: BufferEncoding, cb: (err?: Error | null) => void): void {
    const waits: Promise<void>[] = [];
    for (const out of this.outputs) {
      if (!out.write(chunk)) waits.push(new Promise((resolve) => out.once('drain', resolve)));
    }
    if (!waits.length) return cb();
    Promise.all(waits).then(() => cb(), cb);
  }
  override _final(cb: (err?: Error | null) => void): void {
    for (const out of this.outputs) out.end();
    cb();
  }
  override _destroy(err: Error | null, cb: (err?: Error | null) => void): void {
    // autoDestroy runs this after a normal finish too: then the outputs must be left to drain.
    if (err) for (const out of this.outputs) out.destroy(err);
    cb(err);
  }
}
