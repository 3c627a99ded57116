/**
 * Minimal zip writer for tests (no zip library is installed): stored or deflated entries,
 * optionally encrypted with traditional PKWARE encryption ("ZipCrypto", APPNOTE 6.1).
 */
import { deflateRawSync } from 'node:zlib';

export interface ZipEntry {
  name: string;
  data: Buffer;
  /** 'deflate' (default) or 'store'. */
  method?: 'store' | 'deflate';
  /** Encrypt the entry with this password (traditional PKWARE encryption, flag bit 0). */
  password?: string;
}

const CRC_TABLE = (() => {
  const table = new Uint32Array(256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    table[n] = c >>> 0;
  }
  return table;
})();

/** One CRC-32 step without the pre/post inversion (what ZipCrypto's key update uses). */
function crcStep(crc: number, byte: number): number {
  return ((CRC_TABLE[(crc ^ byte) & 0xff] as number) ^ (crc >>> 8)) >>> 0;
}

export function crc32(data: Buffer): number {
  let crc = 0xffffffff;
  for (const b of data) crc = crcStep(crc, b);
  return (crc ^ 0xffffffff) >>> 0;
}

/** Traditional PKWARE encryption of `data`, prefixed with the 12-byte encryption header. */
function zipCrypto(data: Buffer, password: string, crc: number): Buffer {
  let k0 = 0x12345678;
  let k1 = 0x23456789;
  let k2 = 0x34567890;
  const update = (b: number): void => {
    k0 = crcStep(k0, b);
    k1 = (Math.imul((k1 + (k0 & 0xff)) >>> 0, 134775813) + 1) >>> 0;
    k2 = crcStep(k2, k1 >>> 24);
  };
  const streamByte = (): number => {
    const t = (k2 | 2) & 0xffff;
    return (Math.imul(t, t ^ 1) >>> 8) & 0xff;
  };
  for (const b of Buffer.from(password, 'latin1')) update(b);
  // Header: 11 bytes that would be random (fixed here so tests are deterministic) + CRC high byte.
  const header = Buffer.alloc(12);
  for (let i = 0; i < 11; i++) header[i] = (i * 37 + 11) & 0xff;
  header[11] = crc >>> 24;
  const plain = Buffer.concat([header, data]);
  const out = Buffer.alloc(plain.length);
  for (let i = 0; i < plain.length; i++) {
    const p = plain[i] as number;
    out[i] = p ^ streamByte();
    update(p);
  }
  return out;
}

/** Builds a complete zip archive in memory (fine for test-sized inputs). */
export function buildZip(entries: ZipEntry[]): Buffer {
  const locals: Buffer[] = [];
  const centrals: Buffer[] = [];
  let offset = 0;
  // 2024-01-01 00:00:00 in DOS format.
  const dosTime = 0;
  const dosDate = ((2024 - 1980) << 9) | (1 << 5) | 1;
  for (const entry of entries) {
    const name = Buffer.from(entry.name, 'utf8');
    const method = entry.method === 'store' ? 0 : 8;
    const crc = crc32(entry.data);
    let body = method === 8 ? deflateRawSync(entry.data) : entry.data;
    let flags = 0x0800; // UTF-8 names
    if (entry.password !== undefined) {
      body = zipCrypto(body, entry.password, crc);
      flags |= 0x0001;
    }
    const local = Buffer.alloc(30);
    local.writeUInt32LE(0x04034b50, 0);
    local.writeUInt16LE(20, 4);
    local.writeUInt16LE(flags, 6);
    local.writeUInt16LE(method, 8);
    local.writeUInt16LE(dosTime, 10);
    local.writeUInt16LE(dosDate, 12);
    local.writeUInt32LE(crc, 14);
    local.writeUInt32LE(body.length, 18);
    local.writeUInt32LE(entry.data.length, 22);
    local.writeUInt16LE(name.length, 26);
    local.writeUInt16LE(0, 28);
    locals.push(local, name, body);

    const central = Buffer.alloc(46);
    central.writeUInt32LE(0x02014b50, 0);
    central.writeUInt16LE(20, 4);
    central.writeUInt16LE(20, 6);
    central.writeUInt16LE(flags, 8);
    central.writeUInt16LE(method, 10);
    central.writeUInt16LE(dosTime, 12);
    central.writeUInt16LE(dosDate, 14);
    central.writeUInt32LE(crc, 16);
    central.writeUInt32LE(body.length, 20);
    central.writeUInt32LE(entry.data.length, 24);
    central.writeUInt16LE(name.length, 28);
    // extra length, comment length, disk start, internal attributes, external attributes: 0
    central.writeUInt32LE(offset, 42);
    centrals.push(central, name);

    offset += local.length + name.length + body.length;
  }
  const cd = Buffer.concat(centrals);
  const eocd = Buffer.alloc(22);
  eocd.writeUInt32LE(0x06054b50, 0);
  eocd.writeUInt16LE(entries.length, 8);
  eocd.writeUInt16LE(entries.length, 10);
  eocd.writeUInt32LE(cd.length, 12);
  eocd.writeUInt32LE(offset, 16);
  return Buffer.concat([...locals, cd, eocd]);
}
