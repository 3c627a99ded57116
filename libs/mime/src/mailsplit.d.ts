// Minimal typings for mailsplit 5.x (it ships none): only what libs/mime uses.
// Kept internal: nothing here appears in the public API of @mailwarden/mime.
declare module 'mailsplit' {
  import { Transform } from 'node:stream';

  export interface HeaderLine {
    /** Lower-cased header name. */
    key: string;
    /** The whole header line as a 'binary' (latin1) string, folding kept, no trailing line break. */
    line: string;
  }

  export class Headers {
    /** Parses a raw header block (lazily: nothing happens until a method needs the lines). */
    constructor(headers: Buffer | string);
    /** mbox "From " envelope line, if the header block started with one. */
    mbox: string | false;
    hasHeader(key: string): boolean;
    /** Full header lines ("Subject: ...") for the key, in order. */
    get(key: string): string[];
    /** Unfolded, trimmed value of the first line for the key ('' if absent). Not RFC 2047 decoded. */
    getFirst(key: string): string;
    /** The parsed header lines, in order (undocumented but public method of the class). */
    getList(): HeaderLine[];
    /** Adds a header (value folded at 76) at index (0 = top, >= length = bottom). */
    add(key: string, value: string, index?: number): void;
    /** Inserts an already formatted line at index, unchanged. */
    addFormatted(key: string, line: string, index?: number): void;
    remove(key: string): void;
    /** Raw bytes of the header block, including the empty line that ends it. */
    build(lineEnd?: string): Buffer;
  }

  export interface MimeNode {
    type: 'node';
    root: boolean;
    parentNode: MimeNode | false;
    headers: Headers | false;
    contentType: string | false;
    encoding: string | false;
    disposition: string | false;
    filename: string | false;
    charset: string | false;
    multipart: string | false;
    /** Set on message/rfc822 nodes: true when the splitter parses the embedded message. */
    messageNode?: boolean;
    // internals, relied upon by the hardened splitter (see splitter.ts)
    _boundary: Buffer | false;
    _parentBoundary: Buffer | false;
    _headerlen: number;
    parseHeaders(): void;
    getHeaders(): Buffer;
  }

  export interface BodyChunk {
    type: 'body';
    node: MimeNode;
    value: Buffer;
  }

  export interface DataChunk {
    type: 'data';
    node: MimeNode;
    value: Buffer;
  }

  export type SplitterObject = MimeNode | BodyChunk | DataChunk;

  export interface SplitterOptions {
    ignoreEmbedded?: boolean;
    defaultInlineEmbedded?: boolean;
    maxHeadSize?: number;
    maxChildNodes?: number;
  }

  export class Splitter extends Transform {
    constructor(options?: SplitterOptions);
    // internals, relied upon by the hardened splitter (see splitter.ts)
    node: MimeNode;
    state: number;
    /** The unfinished line carried to the next chunk. */
    line: Buffer | false;
    newNode(parent?: MimeNode | false): void;
  }

  export class Joiner extends Transform {
    constructor();
  }
}
