import { EICAR } from '@mailwarden/testkit';
import type { PartVerdict } from '@mailwarden/contracts';
import { analyzeMessage, MemorySource, type Analysis, type CheckArchive } from '../src/index.js';

/** An engine that finds EICAR anywhere in a content (like clamd's body signature), and counts scans. */
export function fakeEngine(): { scan: (c: { open(): NodeJS.ReadableStream }) => Promise<PartVerdict>; scans: number } {
  const engine = {
    scans: 0,
    async scan(c: { open(): NodeJS.ReadableStream }): Promise<PartVerdict> {
      engine.scans++;
      const chunks: Buffer[] = [];
      for await (const x of c.open()) chunks.push(x as Buffer);
      return Buffer.concat(chunks).includes(EICAR) ? { kind: 'infected', detail: 'Eicar-Test-Signature' } : { kind: 'clean' };
    },
  };
  return engine;
}

export const crlf = (lines: string[]): Buffer => Buffer.from(lines.join('\r\n'), 'latin1');

export async function analyse(message: Buffer, checkArchive?: CheckArchive): Promise<Analysis> {
  const engine = fakeEngine();
  return analyzeMessage(new MemorySource(message), { scan: engine.scan, ...(checkArchive ? { checkArchive } : {}) });
}

/** Paths of the parts with a finding. */
export const flagged = (a: Analysis): string[] => a.parts.filter((p) => p.verdict.kind !== 'clean').map((p) => p.path);

export const b64 = (b: Buffer, width = 76): string => b.toString('base64').replace(new RegExp(`.{${width}}`, 'g'), '$&\r\n');

export function uuencode(data: Buffer): string {
  let out = '';
  for (let i = 0; i < data.length; i += 45) {
    const s = data.subarray(i, i + 45);
    let line = String.fromCharCode(32 + s.length);
    for (let j = 0; j < s.length; j += 3) {
      const a = s[j]!;
      const b = s[j + 1] ?? 0;
      const c = s[j + 2] ?? 0;
      line += [a >> 2, ((a & 3) << 4) | (b >> 4), ((b & 15) << 2) | (c >> 6), c & 63].map((v) => String.fromCharCode(v ? v + 32 : 96)).join('');
    }
    out += `${line}\r\n`;
  }
  return `${out}\`\r\n`;
}
