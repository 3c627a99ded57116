import { MemorySource, analyzeMessage, type CheckArchive } from '@mailwarden/analysis';
import type { ClamdClient } from '@mailwarden/clamd';
import type { PartVerdict, QuarantineRescan } from '@mailwarden/contracts';

/** What a rescan reports (who and when are added by the caller). */
export type RescanReport = Omit<QuarantineRescan, 'by' | 'at'>;

export type Rescan = (original: Buffer) => Promise<RescanReport>;

/**
 * Scans a quarantined original again, now, exactly as a scanner would (libs/analysis: every
 * reading a lenient client could make; our archive checks), straight against clamd — never through
 * the scan cache, so today's signatures decide. The verdict is the worst finding: infected over
 * unscannable over clean. An engine failure throws (the API answers 503).
 */
export function clamdRescan(clamd: Pick<ClamdClient, 'scan'>, checkArchive?: CheckArchive): Rescan {
  return async (original) => {
    const engines = new Set<string>();
    const analysis = await analyzeMessage(new MemorySource(original), {
      scan: async (content) => {
        const outcome = await clamd.scan(async () => content.open());
        engines.add(outcome.engine);
        const v: PartVerdict = {
          kind: outcome.kind,
          ...(outcome.kind !== 'clean' ? { detail: outcome.signature } : {}),
          ...(outcome.kind === 'unscannable' ? { reason: outcome.reason } : {}),
        };
        return v;
      },
      ...(checkArchive ? { checkArchive } : {}),
    });
    const found = analysis.parts.filter((p) => p.verdict.kind === 'infected' || p.verdict.kind === 'unscannable');
    const verdict = found.some((p) => p.verdict.kind === 'infected') ? 'infected' : found.length ? 'unscannable' : 'clean';
    return {
      verdict,
      findings: found.map((p) => ({
        path: p.path,
        ...(p.filename ? { filename: p.filename } : {}),
        verdict: p.verdict.kind,
        ...(p.verdict.reason ? { reason: p.verdict.reason } : {}),
        ...(p.verdict.detail ? { signature: p.verdict.detail } : {}),
      })),
      ...(engines.size ? { engine: [...engines].join(', ') } : {}),
    };
  };
}
