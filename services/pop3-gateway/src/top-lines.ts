const LF = 0x0a;
const CR = 0x0d;

/**
 * TOP msg n (RFC 1939 7): the header, the blank line that ends it, and the first `bodyLines`
 * lines of the body, cut from a message stream. Stops reading `source` at the cut (a `for await`
 * that returns early destroys it), so a TOP of a large message reads little of it.
 */
export async function* topLines(source: AsyncIterable<Buffer>, bodyLines: number): AsyncGenerator<Buffer> {
  let inHeader = true;
  /** Bytes of the current line so far, and its last byte. */
  let lineBytes = 0;
  let last = -1;
  let counted = 0;
  if (bodyLines < 0) throw new RangeError('bodyLines must be ≥ 0');
  for await (const chunk of source) {
    for (let i = 0; i < chunk.length; i++) {
      const byte = chunk[i]!;
      if (byte !== LF) {
        lineBytes++;
        last = byte;
        continue;
      }
      const blank = lineBytes === 0 || (lineBytes === 1 && last === CR);
      lineBytes = 0;
      last = byte;
      if (inHeader) {
        if (!blank) continue;
        inHeader = false;
        if (bodyLines > 0) continue;
      } else if (++counted < bodyLines) continue;
      yield chunk.subarray(0, i + 1);
      return;
    }
    yield chunk;
  }
}
