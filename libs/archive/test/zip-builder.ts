/**
 * A zip writer for these tests that can also write what real writers rarely do: data
 * descriptors, arbitrary method numbers, a prefix (self-extractor stub) with or without adjusted
 * offsets, a comment. testkit's buildZip covers the plain and encrypted cases.
 */
import { deflateRawSync } from 'node:zlib';
import { crc32 } from '../src/crc32.js';

export interface BuildEntry {
  name: string;
  data: Buffer;
  /** 'store', 'deflate' (default), or a raw method number written over stored data. */
  method?: 'store' | 'deflate' | number;
  /** Write CRC and sizes after the data (flag bit 3) and zeros in the local header. */
  descriptor?: boolean;
}

export interface BuildOptions {
  prefix?: Buffer;
  /** With a prefix: offsets count from the start of the file (as `zip -A` writes) instead of the zip. */
  adjustOffsets?: boolean;
  comment?: Buffer;
  /** Write Zip64 end records (forced when there are more than 65535 entries). */
  zip64?: boolean;
}

export interface BuiltZip {
  zip: Buffer;
  /** Offset of each member's local header in `zip`. */
  locals: number[];
  /** Offset of each member's central directory entry in `zip`. */
  centrals: number[];
  cdStart: number;
  eocd: number;
}

export function buildZip(entries: BuildEntry[], opts: BuildOptions = {}): BuiltZip {
  const prefix = opts.prefix ?? Buffer.alloc(0);
  const base = opts.adjustOffsets ? prefix.length : 0;
  const central: Buffer[] = [];
  const locals: number[] = [];
  const centrals: number[] = [];
  let pos = prefix.length;
  const records: Buffer[] = [];
  for (const e of entries) {
    const name = Buffer.from(e.name, 'utf8');
    const method = e.method === 'store' ? 0 : e.method === undefined || e.method === 'deflate' ? 8 : e.method;
    const body = e.method === undefined || e.method === 'deflate' ? deflateRawSync(e.data) : e.data;
    const crc = crc32(e.data);
    const flags = 0x0800 | (e.descriptor ? 0x0008 : 0);
    const local = Buffer.alloc(30);
    local.writeUInt32LE(0x04034b50, 0);
    local.writeUInt16LE(20, 4);
    local.writeUInt16LE(flags, 6);
    local.writeUInt16LE(method, 8);
    if (!e.descriptor) {
      local.writeUInt32LE(crc, 14);
      local.writeUInt32LE(body.length, 18);
      local.writeUInt32LE(e.data.length, 22);
    }
    local.writeUInt16LE(name.length, 26);
    const descriptor = Buffer.alloc(e.descriptor ? 16 : 0);
    if (e.descriptor) {
      descriptor.writeUInt32LE(0x08074b50, 0);
      descriptor.writeUInt32LE(crc, 4);
      descriptor.writeUInt32LE(body.length, 8);
      descriptor.writeUInt32LE(e.data.length, 12);
    }
    locals.push(pos);
    const c = Buffer.alloc(46);
    c.writeUInt32LE(0x02014b50, 0);
    c.writeUInt16LE(20, 4);
    c.writeUInt16LE(20, 6);
    c.writeUInt16LE(flags, 8);
    c.writeUInt16LE(method, 10);
    c.writeUInt32LE(crc, 16);
    c.writeUInt32LE(body.length, 20);
    c.writeUInt32LE(e.data.length, 24);
    c.writeUInt16LE(name.length, 28);
    c.writeUInt32LE(pos - prefix.length + base, 42);
    central.push(c, name);
    records.push(local, name, body, descriptor);
    pos += local.length + name.length + body.length + descriptor.length;
  }
  const cdStart = pos;
  let cpos = cdStart;
  for (let i = 0; i < central.length; i += 2) {
    centrals.push(cpos);
    cpos += (central[i] as Buffer).length + (central[i + 1] as Buffer).length;
  }
  const cd = Buffer.concat(central);
  const comment = opts.comment ?? Buffer.alloc(0);
  const zip64 = opts.zip64 || entries.length > 0xffff;
  const cdOffset = cdStart - prefix.length + base;
  const end64 = Buffer.alloc(zip64 ? 76 : 0);
  if (zip64) {
    end64.writeUInt32LE(0x06064b50, 0);
    end64.writeBigUInt64LE(44n, 4);
    end64.writeUInt16LE(45, 12);
    end64.writeUInt16LE(45, 14);
    end64.writeBigUInt64LE(BigInt(entries.length), 24);
    end64.writeBigUInt64LE(BigInt(entries.length), 32);
    end64.writeBigUInt64LE(BigInt(cd.length), 40);
    end64.writeBigUInt64LE(BigInt(cdOffset), 48);
    end64.writeUInt32LE(0x07064b50, 56);
    end64.writeBigUInt64LE(BigInt(cdStart + cd.length - prefix.length + base), 64);
    end64.writeUInt32LE(1, 72);
  }
  const eocd = Buffer.alloc(22);
  eocd.writeUInt32LE(0x06054b50, 0);
  eocd.writeUInt16LE(zip64 ? 0xffff : entries.length, 8);
  eocd.writeUInt16LE(zip64 ? 0xffff : entries.length, 10);
  eocd.writeUInt32LE(zip64 ? 0xffffffff : cd.length, 12);
  eocd.writeUInt32LE(zip64 ? 0xffffffff : cdOffset, 16);
  eocd.writeUInt16LE(comment.length, 20);
  const zip = Buffer.concat([prefix, ...records, cd, end64, eocd, comment]);
  return { zip, locals, centrals, cdStart, eocd: cdStart + cd.length + end64.length };
}

/** A copy of `buf` with `bytes` written at `at`. */
export function patch(buf: Buffer, at: number, bytes: number[] | Buffer): Buffer {
  const out = Buffer.from(buf);
  Buffer.from(bytes).copy(out, at);
  return out;
}

/** Deterministic pseudo-random numbers (xorshift32) so fuzz failures reproduce. */
export function prng(seed: number): () => number {
  let s = seed >>> 0 || 1;
  return () => {
    s ^= s << 13;
    s >>>= 0;
    s ^= s >>> 17;
    s ^= s << 5;
    s >>>= 0;
    return s / 2 ** 32;
  };
}
