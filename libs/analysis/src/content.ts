import { createHash } from 'node:crypto';
import { Readable, Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { ByteSource } from './byte-source.js';
import { readLines } from './line-reader.js';
import { createLenientDecoder, LenientBase64Decoder, PercentDecoder, uudecodeLine, ydecodeLine } from './decoders.js';
import type { EncodedBlock } from './body-scan.js';

/** One content a client could get out of the message: where it comes from, and how to read it. */
export interface Content {
  /** Part-map path of the node whose removal removes this content. */
  owner: string;
  /** Which interpretation produced it, for logs and the verdict's `source`. */
  label: string;
  /** Encoded size: an upper bound of the decoded size, to decide whether to hold it in memory. */
  estimate: number;
  open(): Readable;
  /** The owner's main content (its declared decoding): its size and hash go into the part map. */
  main?: boolean;
  /** The bytes were decoded (not raw): text inside may hide further encodings. */
  decoded?: boolean;
  /**
   * false: do not look for encoded blocks inside. For quoted-printable guessed on a raw text body:
   * it only changes `=XX` escapes, so the raw body's own blocks are the same, and they are mapped
   * to regions there, while blocks found here could only be mapped to the whole part.
   */
  sniffInside?: boolean;
  /** How deep in decoded/nested contents this one is (bounded by maxDepth). */
  depth: number;
}

/** A body under a whole-body decoding. */
export function bodyContent(source: ByteSource, start: number, end: number, decoding: 'identity' | 'base64' | 'base64-ignore-padding' | 'qp'): () => Readable {
  return () => (decoding === 'identity' ? source.stream(start, end) : source.stream(start, end).pipe(createLenientDecoder(decoding)));
}

/** base64 from the `skip`-th alphabet character on: the other alignments of a run that may have picked up a foreign line. */
export function shiftedBase64Content(source: ByteSource, start: number, end: number, skip: number): () => Readable {
  return () => source.stream(start, end).pipe(new LenientBase64Decoder('restart', skip));
}

/** An encoded block (uuencode, begin-base64, yEnc, an inline data: URI or string) decoded. */
export function blockContent(source: ByteSource, block: EncodedBlock): () => Readable {
  if (block.kind === 'percent') return () => source.stream(block.dataStart, block.dataEnd).pipe(new PercentDecoder());
  if (block.kind === 'base64') return () => source.stream(block.dataStart, block.dataEnd).pipe(new LenientBase64Decoder('restart'));
  const decodeLine = block.kind === 'uu' ? uudecodeLine : ydecodeLine;
  return () =>
    Readable.from(
      (async function* () {
        for await (const lines of readLines(source, block.dataStart, block.dataEnd)) for (const line of lines) {
          if (block.kind === 'yenc' && line.text[0] === 0x3d && line.text[1] === 0x79) continue; // =ypart lines
          const bytes = decodeLine(line.text);
          if (bytes.length) yield bytes;
        }
      })(),
    );
}

/** Every uuencoded line of a body (x-uuencode CTE without begin/end lines). */
export function uuBodyContent(source: ByteSource, start: number, end: number): () => Readable {
  return blockContent(source, { kind: 'uu', start, end, dataStart: start, dataEnd: end });
}

/** Reads a content whole, or stops at `limit` bytes (undefined then). */
export async function materialize(stream: Readable, limit: number): Promise<Buffer | undefined> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of stream as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size > limit) {
      stream.destroy();
      return undefined;
    }
    chunks.push(chunk);
  }
  return Buffer.concat(chunks, size);
}

/** sha256 and size of a stream, without holding it. */
export async function hashStream(stream: Readable): Promise<{ sha256: string; size: number }> {
  const hash = createHash('sha256');
  let size = 0;
  await pipeline(
    stream,
    new Writable({
      write(chunk: Buffer, _e, cb) {
        hash.update(chunk);
        size += chunk.length;
        cb();
      },
    }),
  );
  return { sha256: hash.digest('hex'), size };
}

export function sha256(bytes: Buffer): string {
  return createHash('sha256').update(bytes).digest('hex');
}
