/** Field readers for 512-byte tar headers (POSIX ustar, GNU and pax extensions). */
const BLOCK = 512;

/** Octal field (NUL/space padded), or GNU base-256 when the top bit of the first byte is set. */
export function readNumber(field: Buffer): number | undefined {
  if (field.length > 0 && ((field[0] as number) & 0x80) !== 0) {
    let v = 0;
    for (let i = 1; i < field.length; i++) v = v * 256 + (field[i] as number);
    return Number.isSafeInteger(v) ? v : undefined;
  }
  const s = field.toString('latin1').replace(/[\0 ]+$/, '').replace(/^ +/, '');
  if (s === '') return 0;
  return /^[0-7]+$/.test(s) ? parseInt(s, 8) : undefined;
}

/** The header checksum (bytes 148..155 counted as spaces); old tars summed signed bytes, so accept both. */
export function checksumOk(block: Buffer): boolean {
  const stored = readNumber(block.subarray(148, 156));
  if (stored === undefined) return false;
  let unsigned = 0;
  let signed = 0;
  for (let i = 0; i < BLOCK; i++) {
    const b = i >= 148 && i < 156 ? 0x20 : (block[i] as number);
    unsigned += b;
    signed += b > 127 ? b - 256 : b;
  }
  return stored === unsigned || stored === signed;
}

export function isZeroBlock(block: Buffer): boolean {
  for (let i = 0; i < block.length; i++) if (block[i] !== 0) return false;
  return true;
}

function cString(field: Buffer): string {
  const end = field.indexOf(0);
  return field.toString('utf8', 0, end < 0 ? field.length : end);
}

/** Member name, with the ustar prefix field when there is one. */
export function headerName(block: Buffer): string {
  const name = cString(block.subarray(0, 100));
  const ustar = block.toString('latin1', 257, 262) === 'ustar';
  const prefix = ustar ? cString(block.subarray(345, 500)) : '';
  return prefix ? `${prefix}/${name}` : name;
}

/** pax extended header records ("%d %s=%s\n"): only path and size change how members are read. */
export function readPax(data: Buffer): { path?: string; size?: number } {
  const out: { path?: string; size?: number } = {};
  for (let p = 0; p < data.length; ) {
    const space = data.indexOf(0x20, p);
    if (space < 0) break;
    const len = Number(data.toString('latin1', p, space));
    if (!Number.isSafeInteger(len) || len <= space - p || p + len > data.length) break;
    const record = data.toString('utf8', space + 1, p + len - 1);
    const eq = record.indexOf('=');
    const key = record.slice(0, eq);
    const value = record.slice(eq + 1);
    if (key === 'path') out.path = value;
    if (key === 'size' && /^\d+$/.test(value)) out.size = Number(value);
    p += len;
  }
  return out;
}
