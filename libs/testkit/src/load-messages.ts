/**
 * Unique load-test messages (benchmark and fault drill), cheaply: one random attachment per size is base64-encoded once into
 * a message template; each message then gets fresh random bytes patched over the first 12 bytes
 * of the attachment (the first 16 base64 characters) and over nonces in the headers and text.
 * So every attachment and every text part is different content (no cache of clamd or of
 * Mailwarden can help), while building a message costs one buffer copy.
 */
import { createHash, randomBytes } from 'node:crypto';
import { EICAR } from './eicar.js';

export interface BenchMessage {
  /** The whole message, CRLF, ready for DATA (no line starts with a dot). */
  data: Buffer;
  infected: boolean;
}

const NONCE_BYTES = 12; // 16 base64 characters, 24 hex digits

/** Offset of EICAR inside an infected attachment (any offset matches the .ndb body signature). */
const EICAR_OFFSET = 4096;

function wrap76(b64: string): string {
  const lines: string[] = [];
  for (let i = 0; i < b64.length; i += 76) lines.push(b64.slice(i, i + 76));
  return lines.join('\r\n');
}

interface Template {
  data: Buffer;
  /** Offsets of the placeholders in `data`. */
  hexAt: number[];
  b64At: number;
}

function buildTemplate(attachment: Buffer, to: string, filename: string): Template {
  const HEX = 'h'.repeat(NONCE_BYTES * 2);
  const B64 = 'b'.repeat(16);
  const boundary = '----=_mw_bench_boundary_0123456789';
  const b64 = B64 + wrap76(attachment.toString('base64')).slice(16);
  const text = [
    `From: Bench Sender <sender@bench.example>`,
    `To: <${to}>`,
    `Subject: Benchmark message ${HEX}`,
    `Date: Fri, 27 Nov 2026 10:00:00 +0000`,
    `Message-ID: <${HEX}@bench.example>`,
    'MIME-Version: 1.0',
    `Content-Type: multipart/mixed; boundary="${boundary}"`,
    '',
    'This is a multi-part message in MIME format.',
    '',
    `--${boundary}`,
    'Content-Type: text/plain; charset=utf-8',
    'Content-Transfer-Encoding: 7bit',
    '',
    'Hello,',
    `please find the file attached (reference ${HEX}).`,
    '',
    `--${boundary}`,
    `Content-Type: application/octet-stream; name="${filename}"`,
    'Content-Transfer-Encoding: base64',
    `Content-Disposition: attachment; filename="${filename}"`,
    '',
    b64,
    `--${boundary}--`,
    '',
  ].join('\r\n');
  const data = Buffer.from(text, 'latin1');
  if (data.includes('\r\n.')) throw new Error('template would need dot-stuffing');
  const hexAt: number[] = [];
  for (let at = data.indexOf(HEX); at >= 0; at = data.indexOf(HEX, at + 1)) hexAt.push(at);
  return { data, hexAt, b64At: data.indexOf(B64) };
}

export class MessageFactory {
  private readonly clean: Template;
  private readonly infected: Template;
  private readonly blob: Buffer;
  private readonly infectedBlob: Buffer;

  /**
   * @param size attachment size in bytes (decoded)
   * @param infectedRatio share of messages whose attachment carries EICAR (deterministically spread)
   */
  constructor(
    readonly size: number,
    readonly infectedRatio: number,
    to = 'user@example.test',
  ) {
    this.blob = randomBytes(size);
    this.infectedBlob = Buffer.from(this.blob);
    EICAR.copy(this.infectedBlob, Math.min(EICAR_OFFSET, Math.max(NONCE_BYTES, size - EICAR.length)));
    this.clean = buildTemplate(this.blob, to, 'report.bin');
    this.infected = buildTemplate(this.infectedBlob, to, 'invoice.bin');
  }

  isInfected(i: number): boolean {
    if (this.infectedRatio <= 0) return false;
    const every = Math.round(1 / this.infectedRatio);
    return i % every === Math.floor(every / 2);
  }

  /** Message number `i`, with fresh random content. */
  message(i: number): BenchMessage {
    const infected = this.isInfected(i);
    const t = infected ? this.infected : this.clean;
    const data = Buffer.from(t.data);
    const nonce = randomBytes(NONCE_BYTES);
    const hex = nonce.toString('hex');
    for (const at of t.hexAt) data.write(hex, at, 'latin1');
    data.write(nonce.toString('base64'), t.b64At, 'latin1');
    return { data, infected };
  }

  /** A decoded attachment like message(i)'s, for the raw clamd ceiling (same sizes, same mix). */
  part(i: number): Buffer {
    const p = Buffer.from(this.isInfected(i) ? this.infectedBlob : this.blob);
    randomBytes(NONCE_BYTES).copy(p, 0);
    return p;
  }
}

/** One message with one fixed attachment for many recipients (the scan cache's case). */
export function massMailing(size: number): { attachment: Buffer; sha256: string; message(i: number, to: string): Buffer } {
  const attachment = randomBytes(size);
  const t = buildTemplate(attachment, 'RCPT_PLACEHOLDER@example.test', 'newsletter.pdf');
  const b64 = attachment.subarray(0, NONCE_BYTES).toString('base64');
  return {
    attachment,
    sha256: createHash('sha256').update(attachment).digest('hex'),
    message(_i, to) {
      const data = Buffer.from(t.data);
      const hex = randomBytes(NONCE_BYTES).toString('hex');
      for (const at of t.hexAt) data.write(hex, at, 'latin1');
      data.write(b64, t.b64At, 'latin1');
      // The To header is cosmetic for the sink; the envelope recipient is what matters.
      return Buffer.from(data.toString('latin1').replace('RCPT_PLACEHOLDER@example.test', to), 'latin1');
    },
  };
}
