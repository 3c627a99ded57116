import type { Envelope, Policy, RemovedPart, Verdict } from '@mailwarden/contracts';

export type Decision = { kind: 'tempfail'; error: string } | { kind: 'deliver'; removed: RemovedPart[] };

/** The seed's rules as a pure function: which parts go, and whether the message may be delivered at all. */
export function decide(envelope: Envelope, verdicts: Verdict[], policy: Policy): Decision {
  const failed = verdicts.find((v) => v.kind === 'error');
  if (failed) return { kind: 'tempfail', error: `part ${failed.part}: ${failed.detail ?? 'scan error'}` };
  const removed: RemovedPart[] = [];
  for (const v of verdicts) {
    const remove = v.kind === 'infected' || (v.kind === 'unscannable' && policy.unscannable.action === 'remove');
    if (!remove) continue;
    const filename = envelope.parts[v.part]?.filename;
    removed.push({ part: v.part, kind: v.kind, ...(filename ? { filename } : {}), ...(v.detail ? { detail: v.detail } : {}), ...(v.reason ? { reason: v.reason } : {}) });
  }
  return { kind: 'deliver', removed };
}

export function describeRemoval(r: RemovedPart): string {
  if (r.kind === 'infected') return `infected with ${r.detail ?? 'a virus'}`;
  const why = r.reason === 'encrypted' ? 'encrypted or password protected' : r.reason === 'limits' ? 'exceeds the scanning limits' : 'damaged or unreadable';
  return `could not be scanned (${why}${r.detail ? `: ${r.detail}` : ''})`;
}
