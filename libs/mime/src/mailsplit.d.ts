// Minimal typings for mailsplit 5.x (it ships none): only what libs/mime uses, its Headers class
// (header blocks edited in place by splice-message, subject-prefix and notice-part).
// Kept internal: nothing here appears in the public API of @mailwarden/mime.
declare module 'mailsplit' {
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
}
