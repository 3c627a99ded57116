import type { TransformCallback } from 'node:stream';
import { Splitter, type MimeNode, type SplitterOptions } from 'mailsplit';

const CR = Buffer.from('\r');
/** mailsplit's HEAD/BODY state values and default maxHeadSize (message-splitter.js). */
const BODY = 0x02;
const MAX_HEAD_SIZE = 1024 * 1024;
/** A pending (unfinished) line longer than this is cut (see boundPendingLine). */
const MAX_PENDING_LINE = 128 * 1024;

/**
 * Options every Splitter of this library uses, for extraction and rebuild alike (they must agree,
 * or leaf numbers would differ).
 *
 * - `defaultInlineEmbedded`: a message/rfc822 part is parsed (its parts become leaves) unless it
 *   is explicitly `Content-Disposition: attachment`. mailsplit's default parses only explicitly
 *   `inline` ones, which leaves the common forwarded message without disposition unparsed.
 *   An rfc822 part that is not parsed (attachment disposition, or a transfer encoding other than
 *   7bit/8bit/binary such as base64) is one leaf: the whole embedded message is scanned as a file.
 */
export const SPLITTER_OPTIONS: Readonly<SplitterOptions> = Object.freeze({ defaultInlineEmbedded: true });

/**
 * mailsplit's Splitter with three fixes, so that no byte escapes its leaf and split→join is exact:
 *
 * 1. A `boundary=` parameter counts only on multipart/* parts (RFC 2046). mailsplit honours it on
 *    any part, so `--b` lines inside e.g. an application/octet-stream body with `boundary=b` would
 *    open child parts and, after `--b--`, the rest of that body would be read as multipart
 *    epilogue: bytes a client shows as attachment content but that are not in any leaf, so never
 *    scanned. Likewise a multipart without a boundary is treated as a plain leaf (its body is
 *    emitted as 'body', not as multipart 'data'), so its content is scanned.
 * 2. mailsplit 5.4.6 drops bytes when a chunk ends between the CR and the LF of a line break and
 *    the next chunk holds no further line break (`chunk.slice(pos)` with pos = -1 in
 *    _transform): e.g. chunks "...text\r" + "\nLe" lose "\nL". A trailing CR is held back and
 *    sent with the next chunk, so no chunk boundary ever falls inside a CRLF.
 * 3. A part whose header block is cut short by a sibling boundary (no empty line) is dropped by
 *    mailsplit, header bytes included, which breaks the split→join identity. It is emitted here as
 *    an empty leaf instead.
 *
 * Fixes 1, 3 and boundPendingLine rely on mailsplit internals (`newNode`, `node`, `state`, `line`,
 * `_boundary`, `_parentBoundary`, `_headerlen`) as of 5.4.x;
 * `assertSplitterInternals` checks at first use that they are still there.
 */
class HardenedSplitter extends Splitter {
  private heldCr = false;

  constructor() {
    super({ ...SPLITTER_OPTIONS });
  }

  override _transform(chunk: Buffer, encoding: BufferEncoding, callback: TransformCallback): void {
    if (this.heldCr) {
      chunk = Buffer.concat([CR, chunk]);
      this.heldCr = false;
    }
    if (chunk[chunk.length - 1] === 0x0d) {
      this.heldCr = true;
      chunk = chunk.subarray(0, -1);
    }
    if (!chunk.length) return callback();
    try {
      this.boundPendingLine();
    } catch (err) {
      return callback(err as Error);
    }
    super._transform(chunk, encoding, callback);
  }

  /**
   * mailsplit keeps an unfinished line whole until its LF comes (re-concatenated on every chunk):
   * a 50 MB body on one line would be 50 MB in memory, copied quadratically. Between two
   * _transform calls that pending line is the splitter's only buffered state, so it is bounded
   * here: in a header block it is an error past maxHeadSize (as a whole header block would be); in
   * a body all but its last bytes go out as body (or multipart 'data') of the current node. The
   * kept tail is longer than any delimiter line of the current node could be, so the finished
   * line still cannot be read as a boundary, exactly as if it had been kept whole.
   */
  private boundPendingLine(): void {
    const line = this.line;
    if (!line || line.length <= MAX_PENDING_LINE) return;
    const node = this.node;
    if (this.state !== BODY) {
      if (line.length + node._headerlen > MAX_HEAD_SIZE) {
        throw Object.assign(new Error('Max header size for a MIME node exceeded'), { code: 'EMAXLEN' });
      }
      return;
    }
    const boundaries = [node._boundary, node._parentBoundary].map((b) => (b ? b.length : 0));
    // compareBoundary: a delimiter line is at most boundary + "--" x2 + CRLF, after up to 2 line-break bytes
    const keep = Math.max(...boundaries) + 9;
    if (line.length <= keep + MAX_PENDING_LINE / 2) return;
    this.push({ node, type: node.multipart ? 'data' : 'body', value: line.subarray(0, line.length - keep) });
    this.line = Buffer.from(line.subarray(line.length - keep));
  }

  override _flush(callback: TransformCallback): void {
    if (!this.heldCr) return super._flush(callback);
    this.heldCr = false;
    super._transform(CR, 'latin1', (err) => (err ? callback(err) : super._flush(callback)));
  }

  override newNode(parent?: MimeNode | false): void {
    const previous = this.node as MimeNode | undefined;
    if (previous && !previous.headers && previous._headerlen > 0) {
      // header block never terminated, and mailsplit is about to forget it: emit it
      previous.parseHeaders();
      this.push(previous);
    }
    super.newNode(parent);
    hardenNode(this.node);
  }
}

function hardenNode(node: MimeNode): void {
  const parseHeaders = node.parseHeaders;
  node.parseHeaders = function (this: MimeNode): void {
    const first = !this.headers;
    parseHeaders.call(this);
    if (first && !(this.multipart && this._boundary)) {
      this._boundary = false;
      this.multipart = false;
    }
  };
}

let checked = false;

function assertSplitterInternals(splitter: HardenedSplitter): void {
  if (checked) return;
  const node = splitter.node as Partial<MimeNode> | undefined;
  if (
    !node ||
    typeof node.parseHeaders !== 'function' ||
    typeof node._headerlen !== 'number' ||
    !('_boundary' in node) ||
    !('_parentBoundary' in node) ||
    splitter.line !== false ||
    typeof splitter.state !== 'number'
  ) {
    throw new Error('mailsplit internals changed: libs/mime/src/splitter.ts needs updating');
  }
  checked = true;
}

/** A new (hardened) mailsplit Splitter: bytes in, MIME node/body/data objects out. */
export function createSplitter(): Splitter {
  const splitter = new HardenedSplitter();
  assertSplitterInternals(splitter);
  return splitter;
}
