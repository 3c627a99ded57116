import { pipeline, Transform, type Readable, type TransformCallback } from 'node:stream';
import { Joiner, type MimeNode, type SplitterObject } from 'mailsplit';
import { HOLD_LIMIT, LeafTracker } from './leaf.js';
import { encodeNoticeBody, rewriteAsNotice } from './notice-part.js';
import { createSplitter } from './splitter.js';
import { prefixSubject } from './subject-prefix.js';

const CRLF = Buffer.from('\r\n');

export interface Replacement {
  /** Notice text (any line endings; sent with CRLF). */
  noticeText: string;
  /** File name of the notice attachment. */
  noticeFilename: string;
}

export interface RebuildPlan {
  /** Leaf index (as numbered by extractParts) → its replacement. */
  replace: Map<number, Replacement>;
  /** Prepended to the root Subject (see prefixSubject), if given. */
  subjectPrefix?: string;
}

/**
 * The plan cannot be applied: it names a leaf the message does not have (the message is not the
 * one that was split), or the only leaf of a message without parts whose body is over HOLD_LIMIT.
 */
export class RebuildPlanError extends Error {
  override name = 'RebuildPlanError';
}

/**
 * Streams `source` through Splitter → leaf rewriter → Joiner. Each leaf in `plan.replace` becomes a
 * text/plain notice (its original body bytes are dropped as they go by); the root Subject gets
 * `plan.subjectPrefix`. Everything else is passed through untouched, so with an empty plan the
 * output is byte-identical to the input.
 *
 * Errors (source, parser, a plan index the message does not have) destroy the returned stream
 * with the error.
 */
export function rebuildMessage(source: Readable, plan: RebuildPlan): Readable {
  return pipeline(source, createSplitter(), new LeafRewriter(plan), new Joiner(), () => undefined);
}

/** Object stream: splitter objects in, splitter objects and Buffers (for the Joiner) out. */
class LeafRewriter extends Transform {
  private readonly tracker = new LeafTracker();
  private readonly unseen: Set<number>;
  /** Index of the leaf whose body is being dropped, -1 if none. */
  private dropping = -1;
  /** A notice was just written: make sure a line break precedes the next delimiter. */
  private afterNotice = false;
  /** Objects held until the first leaf, in case there is none (see isLeaf); undefined after. */
  private held: SplitterObject[] | undefined = [];
  private heldBytes = 0;

  constructor(private readonly plan: RebuildPlan) {
    super({ objectMode: true });
    this.unseen = new Set(plan.replace.keys());
  }

  override _transform(obj: SplitterObject, _encoding: BufferEncoding, callback: TransformCallback): void {
    try {
      if (obj.type === 'node' && obj.root && this.plan.subjectPrefix !== undefined && obj.headers) {
        prefixSubject(obj.headers, this.plan.subjectPrefix);
      }
      const event = this.tracker.next(obj);
      if (this.held) {
        if (event.kind !== 'leaf') {
          this.held.push(obj);
          if (obj.type !== 'node' || !obj.root) this.heldBytes += obj.type === 'node' ? obj.getHeaders().length : obj.value.length;
          if (this.heldBytes > HOLD_LIMIT) this.release();
          return callback();
        }
        this.release();
      }
      if (event.kind === 'body' && event.index === this.dropping) return callback();
      if (this.afterNotice) {
        this.afterNotice = false;
        const first = obj.type === 'data' ? obj.value[0] : undefined;
        if (obj.type === 'data' && first !== 0x0d && first !== 0x0a) this.push(CRLF);
      }
      this.dropping = -1;
      if (event.kind === 'leaf') this.startLeaf(event.index, event.node);
      else this.push(obj);
      callback();
    } catch (err) {
      callback(err as Error);
    }
  }

  override _flush(callback: TransformCallback): void {
    try {
      const onlyLeaf = this.tracker.end();
      if (onlyLeaf && this.plan.replace.has(onlyLeaf.index)) {
        if (!this.held) throw new RebuildPlanError(`cannot replace a message without any MIME part and a body over ${HOLD_LIMIT} bytes`);
        // the root is the only leaf: its header becomes the notice's, everything after it goes
        this.held = undefined;
        this.startLeaf(onlyLeaf.index, onlyLeaf.node);
      }
      this.release();
      if (this.unseen.size) {
        const missing = [...this.unseen].sort((a, b) => a - b).join(', ');
        throw new RebuildPlanError(`no leaf ${missing} in a message of ${this.tracker.leaves} leaves`);
      }
      callback();
    } catch (err) {
      callback(err as Error);
    }
  }

  /** Passes a leaf node on, or, if the plan replaces it, its notice version and the notice body. */
  private startLeaf(index: number, node: MimeNode): void {
    const replacement = this.plan.replace.get(index);
    if (!replacement) {
      this.push(node);
      return;
    }
    this.unseen.delete(index);
    rewriteAsNotice(node, replacement.noticeFilename);
    this.push(node);
    this.push(encodeNoticeBody(replacement.noticeText));
    this.dropping = index;
    this.afterNotice = true;
  }

  /** Stops holding: passes the held objects on. */
  private release(): void {
    const held = this.held;
    this.held = undefined;
    for (const obj of held ?? []) this.push(obj);
  }
}
