import type { MimeNode, SplitterObject } from 'mailsplit';
import { fromBinaryString } from './header-text.js';

/** What extractParts tells about one MIME leaf part. */
export interface LeafInfo {
  /** 0-based leaf number in document order; rebuildMessage's plan uses the same numbers. */
  index: number;
  /** Lower-cased MIME type; RFC 2045's text/plain when the header is missing or empty. */
  contentType: string;
  /** Decoded file name (Content-Disposition filename, else Content-Type name), if any. */
  filename?: string;
  /** Lower-cased Content-Disposition value (attachment, inline, ...), if any. */
  disposition?: string;
  /** Lower-cased Content-Transfer-Encoding, if any; the decoded stream undoes base64 and quoted-printable. */
  encoding?: string;
}

/** The few properties of a splitter node that decide whether it is a leaf. */
export interface MimeNodeLike {
  type: string;
  multipart?: string | false;
  messageNode?: boolean;
}

/**
 * THE definition of a leaf, shared by extraction and rebuild so that both number leaves alike.
 * For a node emitted by this library's splitter (splitter.ts), a node is a leaf unless it is
 * - a multipart/* with a boundary (a container: its children are the parts), or
 * - a message/rfc822 the splitter parses (`messageNode`: the embedded message's root node follows
 *   it and is the part).
 * Hence leaves are: every single part, at any depth, including the parts of parsed embedded
 * messages; an unparsed message/rfc822 (attachment disposition, or base64/quoted-printable
 * encoded) as a whole; a multipart without boundary as a whole; a root that is not multipart; a
 * part whose header block never ended (as an empty part).
 *
 * A message always has at least one leaf: when none of its nodes is a leaf (a multipart root
 * whose boundary never occurs, or a multipart without any part, or headers only), its root is the
 * one leaf, its body being the whole raw body (see LeafTracker.end). To handle that case while
 * streaming, extraction and rebuild keep what comes before the first leaf, up to HOLD_LIMIT bytes.
 */
export function isLeaf(node: MimeNodeLike): boolean {
  return node.type === 'node' && !node.multipart && !node.messageNode;
}

/** Bytes of body kept before the first leaf, for the root-as-only-leaf case (see isLeaf). */
export const HOLD_LIMIT = 64 * 1024;

/** LeafInfo of a leaf node. */
export function leafInfo(node: MimeNode, index: number): LeafInfo {
  const info: LeafInfo = { index, contentType: node.contentType || 'text/plain' };
  if (node.filename) info.filename = fromBinaryString(node.filename);
  if (node.disposition) info.disposition = node.disposition;
  if (node.encoding) info.encoding = node.encoding;
  return info;
}

/**
 * The message cannot be mapped onto leaves: body bytes outside of their part (should not happen
 * with splitter.ts), or a message without any part whose body is over HOLD_LIMIT.
 */
export class MimeStructureError extends Error {
  override name = 'MimeStructureError';
}

export type LeafEvent =
  | { kind: 'leaf'; index: number; node: MimeNode }
  | { kind: 'body'; index: number; value: Buffer }
  | { kind: 'other' };

/**
 * Numbers leaves as splitter objects go by: feed every object, in order, to `next`.
 * 'body' objects always belong to the latest leaf; anything else throws MimeStructureError so that
 * no byte can escape the leaf it belongs to (and so escape scanning or replacement).
 */
export class LeafTracker {
  private current: { node: MimeNode; index: number } | undefined;
  private count = 0;
  private root: MimeNode | undefined;

  /** Number of leaves seen so far. */
  get leaves(): number {
    return this.count;
  }

  next(obj: SplitterObject): LeafEvent {
    if (obj.type === 'node') {
      if (obj.root) this.root ??= obj;
      if (!isLeaf(obj)) {
        this.current = undefined;
        return { kind: 'other' };
      }
      this.current = { node: obj, index: this.count++ };
      return { kind: 'leaf', index: this.current.index, node: obj };
    }
    if (obj.type === 'body') {
      if (!this.current || this.current.node !== obj.node) {
        throw new MimeStructureError('MIME body bytes outside of the part they belong to');
      }
      return { kind: 'body', index: this.current.index, value: obj.value };
    }
    return { kind: 'other' };
  }

  /**
   * Call at the end of the message. If no node was a leaf, the root is leaf 0 (its whole raw body
   * being its body): returns it. Otherwise returns undefined.
   */
  end(): { index: number; node: MimeNode } | undefined {
    if (this.count > 0 || !this.root) return undefined;
    this.count = 1;
    return { index: 0, node: this.root };
  }
}
