/** The recovery oracle (test/evasion/recover.ts) on what a recipient got, bounded in size and time. */
import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { EICAR_PAYLOAD, EICAR_ZIP_PAYLOAD } from '../../test/dist/evasion/cases.js';
import { payloadHits, recover } from '../../test/dist/evasion/recover.js';

/** Larger deliveries are not given to the oracle (its brute force is quadratic-ish in places). */
export const ORACLE_MAX_BYTES = 1536 * 1024;
const ORACLE_TIMEOUT_MS = 30_000;

/** Messages in `<mailRoot>/<user>/new` (what the dev mailbox, i.e. upstream, received). */
export async function deliveredTo(mailRoot: string, user: string): Promise<Buffer[]> {
  const dir = join(mailRoot, user.toLowerCase(), 'new');
  const names = (await readdir(dir).catch(() => [] as string[])).sort();
  return Promise.all(names.map((n) => readFile(join(dir, n))));
}

/** `recovered` with how, `clean`, or `skipped` (too large, or the oracle did not finish in time). */
export async function runOracle(delivered: Buffer): Promise<{ verdict: 'clean' | 'recovered' | 'skipped'; via?: string }> {
  if (delivered.length > ORACLE_MAX_BYTES) return { verdict: 'skipped', via: `${delivered.length} bytes > ${ORACLE_MAX_BYTES}` };
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<'timeout'>((r) => (timer = setTimeout(() => r('timeout'), ORACLE_TIMEOUT_MS)));
  try {
    const rec = await Promise.race([recover(delivered), timeout]);
    if (rec === 'timeout') return { verdict: 'skipped', via: 'oracle timeout' };
    const hits = [...payloadHits(rec, EICAR_PAYLOAD), ...payloadHits(rec, EICAR_ZIP_PAYLOAD)];
    return hits.length ? { verdict: 'recovered', via: hits.slice(0, 3).map((h) => h.via).join(' | ') } : { verdict: 'clean' };
  } finally {
    clearTimeout(timer);
  }
}
