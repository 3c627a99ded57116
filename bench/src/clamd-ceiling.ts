/**
 * The raw clamd INSTREAM ceiling: the same kind of parts as the messages carry, streamed straight
 * into clamd with our ClamdClient (one connection per scan, as the scanner does), at a given
 * number of concurrent connections. Bounded by count and time like the SMTP load.
 */
import { Readable } from 'node:stream';
import { ClamdClient, parseClamdAddresses, type ClamdBalance } from '@mailwarden/clamd';

export interface CeilingResult {
  scans: number;
  infected: number;
  errors: number;
  elapsedS: number;
  latenciesMs: number[];
}

export async function clamdCeiling(opts: {
  addresses: string;
  /** How the scans use several addresses (default failover: the first one). */
  balance?: ClamdBalance;
  connections: number;
  maxScans: number;
  maxSeconds: number;
  part: (i: number) => Buffer;
}): Promise<CeilingResult> {
  const client = new ClamdClient({ addresses: parseClamdAddresses(opts.addresses), balance: opts.balance ?? 'failover', scanTimeoutMs: 120_000 });
  const out: CeilingResult = { scans: 0, infected: 0, errors: 0, elapsedS: 0, latenciesMs: [] };
  let next = 0;
  const deadline = Date.now() + opts.maxSeconds * 1000;
  const started = process.hrtime.bigint();
  let last = started;
  const worker = async (): Promise<void> => {
    while (next < opts.maxScans && Date.now() < deadline) {
      const part = opts.part(next++);
      const t0 = process.hrtime.bigint();
      try {
        const v = await client.scan(async () => Readable.from([part]));
        out.scans++;
        if (v.kind === 'infected') out.infected++;
      } catch {
        out.errors++;
      }
      const t1 = process.hrtime.bigint();
      if (t1 > last) last = t1;
      out.latenciesMs.push(Number(t1 - t0) / 1e6);
    }
  };
  await Promise.all(Array.from({ length: opts.connections }, worker));
  out.elapsedS = Number(last - started) / 1e9;
  return out;
}
