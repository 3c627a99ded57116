import type { Socket } from 'node:net';
import { Readable } from 'node:stream';
import { DotUnstuffer } from '@mailwarden/mime';
import { UpstreamError } from './upstream-error.js';

const BODY_HIGH_WATER = 64 * 1024;

/**
 * The body of one multi-line response: socket bytes → DotUnstuffer → `stream`. When the consumer
 * is slow the socket is paused (and the silence deadline stops); when it gives up (destroys the
 * stream) the rest is read and dropped, so the leg stays in step with upstream.
 */
export class MultilineBodyReader {
  readonly stream: Readable;
  readonly done: Promise<void>;
  /** Octets of the body handed to the consumer so far (dot-unstuffed, CRLF as sent). */
  received = 0;
  private readonly unstuffer = new DotUnstuffer();
  private discarding = false;
  private waitingDrain = false;
  private timer: NodeJS.Timeout | undefined;
  private settle!: { resolve: () => void; reject: (err: Error) => void };
  private finished = false;

  constructor(
    private readonly silenceMs: number,
    private readonly socket: Socket,
    private readonly onFail: (err: Error) => void,
    private readonly onTerminated: (remainder: Buffer) => void,
  ) {
    this.done = new Promise((resolve, reject) => (this.settle = { resolve, reject }));
    // Nobody may be waiting on `done` when the leg fails; the failure also reaches the stream and the next command.
    this.done.catch(() => undefined);
    this.stream = new Readable({
      highWaterMark: BODY_HIGH_WATER,
      read: () => this.unstuffer.resume(),
      destroy: (err, cb) => {
        this.discarding = true;
        this.unstuffer.resume();
        cb(err);
      },
    });
    // A consumer that gives up may destroy the stream with its own error after it stopped
    // listening (stream/promises pipeline does): that must not crash the process.
    this.stream.on('error', () => undefined);
    this.unstuffer.on('data', (chunk: Buffer) => {
      if (this.discarding) return;
      this.received += chunk.length;
      if (!this.stream.push(chunk)) this.unstuffer.pause();
    });
    this.unstuffer.on('end', () => {
      if (!this.discarding) this.stream.push(null);
    });
    this.unstuffer.once('terminated', () => {
      this.finished = true;
      clearTimeout(this.timer);
      if (this.waitingDrain) {
        this.waitingDrain = false;
        this.socket.resume();
      }
      this.onTerminated(Buffer.from(this.unstuffer.remainder));
      this.settle.resolve();
    });
    this.unstuffer.on('error', (err) => this.onFail(err));
    this.arm();
  }

  write(chunk: Buffer): void {
    if (this.finished) return;
    this.arm();
    if (!this.unstuffer.write(chunk) && !this.finished && !this.waitingDrain) {
      // The consumer is slow: stop reading upstream; its silence is ours, not a timeout.
      this.waitingDrain = true;
      clearTimeout(this.timer);
      this.socket.pause();
      this.unstuffer.once('drain', () => {
        if (!this.waitingDrain) return;
        this.waitingDrain = false;
        this.socket.resume();
        this.arm();
      });
    }
  }

  fail(err: Error): void {
    clearTimeout(this.timer);
    if (this.finished) return;
    this.finished = true;
    this.stream.destroy(err);
    this.unstuffer.destroy();
    this.settle.reject(err);
  }

  private arm(): void {
    clearTimeout(this.timer);
    if (this.finished) return;
    this.timer = setTimeout(
      () => this.onFail(new UpstreamError(`upstream sent nothing for ${this.silenceMs} ms in a multi-line response`)),
      this.silenceMs,
    );
  }
}
