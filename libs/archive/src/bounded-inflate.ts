/**
 * Raw-deflate decoding that never allocates more than asked and never throws: zlib's own
 * maxOutputLength caps memory, `info` tells how much input the stream used (to find what follows
 * it), and a truncated or damaged stream still yields what decodes before the damage — what a
 * lenient extractor would write out.
 */
import zlib from 'node:zlib';

export interface InflateResult {
  output: Buffer;
  /** Input bytes the deflate stream used (only meaningful when `ended`). */
  consumed: number;
  /** The stream reached its final block. */
  ended: boolean;
  /** Decoding stopped at `maxOutput` bytes; `output` is the first `maxOutput` bytes at most. */
  overLimit: boolean;
  /** Why the stream did not end cleanly (truncated, damaged). */
  error?: string;
}

interface Engine {
  bytesWritten: number;
}

function inflateOnce(input: Buffer, maxOutput: number, partial: boolean): { buffer: Buffer; engine: Engine } {
  const opts: zlib.ZlibOptions & { info: true } = { maxOutputLength: Math.max(1, maxOutput), info: true };
  if (partial) opts.finishFlush = zlib.constants.Z_SYNC_FLUSH;
  return zlib.inflateRawSync(input, opts) as unknown as { buffer: Buffer; engine: Engine };
}

function errorCode(err: unknown): string {
  return (err as { code?: string }).code ?? (err instanceof Error ? err.message : String(err));
}

/**
 * Decodes `input` as raw deflate. `wantPartial`: on failure, spend up to ~log2(input) more passes
 * to find the longest prefix that still decodes (each pass bounded by maxOutput), so a truncated
 * or damaged member still hands back its head; verification passes false and saves that work.
 */
export function inflateBounded(input: Buffer, maxOutput: number, wantPartial: boolean): InflateResult {
  try {
    const { buffer, engine } = inflateOnce(input, maxOutput, false);
    return { output: buffer, consumed: engine.bytesWritten, ended: true, overLimit: false };
  } catch (err) {
    const code = errorCode(err);
    const overLimit = code === 'ERR_BUFFER_TOO_LARGE';
    const error = overLimit ? `inflates to more than ${maxOutput} bytes` : code === 'Z_BUF_ERROR' ? 'deflate stream is truncated' : `deflate data is damaged (${code})`;
    if (!wantPartial) return { output: Buffer.alloc(0), consumed: 0, ended: false, overLimit, error };
    return { output: longestGoodPrefix(input, maxOutput), consumed: 0, ended: false, overLimit, error };
  }
}

/** Output of the longest input prefix that decodes (with a sync flush) within maxOutput bytes. */
function longestGoodPrefix(input: Buffer, maxOutput: number): Buffer {
  const attempt = (k: number): Buffer | undefined => {
    try {
      return inflateOnce(input.subarray(0, k), maxOutput, true).buffer;
    } catch {
      return undefined;
    }
  };
  const whole = attempt(input.length);
  if (whole) return whole;
  let lo = 0;
  let hi = input.length; // attempt(hi) fails; attempt(lo) is empty output
  let best: Buffer = Buffer.alloc(0);
  for (let i = 0; i < 40 && hi - lo > 1; i++) {
    const mid = lo + Math.floor((hi - lo) / 2);
    const out = attempt(mid);
    if (out) {
      lo = mid;
      best = out;
    } else hi = mid;
  }
  return best;
}
