import type { MessagePart, MessageVerdict, Policy, RemovedPart } from '@mailwarden/contracts';

export type Decision =
  | { kind: 'tempfail'; error: string }
  | { kind: 'reject'; error: string }
  | { kind: 'deliver'; removed: (RemovedPart & { node: MessagePart })[] };

/**
 * The seed's rules as a pure function: which parts go, and whether the message may be delivered
 * at all. A part inside another removed part goes with it (only the outer one gets a notice).
 * A message over the analysis limits is refused (SMTP) or delivered as a notice only (POP3: the
 * message sits on the server, a refusal would make it unreadable for ever).
 */
export function decide(verdict: MessageVerdict, policy: Policy): Decision {
  if (verdict.outcome === 'error') return { kind: 'tempfail', error: verdict.error ?? 'scan error' };
  if (verdict.outcome === 'rejected') {
    const error = verdict.error ?? 'message over the analysis limits';
    if (verdict.envelope.protocol !== 'pop3') return { kind: 'reject', error };
    const whole: MessagePart = {
      path: '1',
      kind: 'leaf',
      range: { start: 0, end: verdict.envelope.rawSize },
      headerEnd: verdict.rootHeader.end,
      contentType: 'message/rfc822',
      size: verdict.envelope.rawSize,
      sha256: verdict.envelope.rawSha256,
      verdict: { kind: 'unscannable', reason: 'limits', detail: error },
    };
    return { kind: 'deliver', removed: [{ part: '1', kind: 'unscannable', reason: 'limits', detail: error, node: whole }] };
  }
  const failed = verdict.parts.find((p) => p.verdict.kind === 'error');
  if (failed) return { kind: 'tempfail', error: `part ${failed.path}: ${failed.verdict.detail ?? 'scan error'}` };
  const remove = verdict.parts.filter((p) => p.verdict.kind === 'infected' || (p.verdict.kind === 'unscannable' && policy.unscannable.action === 'remove'));
  const outer = remove.filter((p) => !remove.some((q) => q !== p && q.range.start <= p.range.start && p.range.end <= q.range.end && (q.range.end - q.range.start > p.range.end - p.range.start || q.path.length < p.path.length)));
  const removed = outer.map((p) => ({
    part: p.path,
    kind: p.verdict.kind,
    ...(p.filename ? { filename: p.filename } : {}),
    ...(p.verdict.detail ? { detail: p.verdict.detail } : {}),
    ...(p.verdict.reason ? { reason: p.verdict.reason } : {}),
    node: p,
  }));
  return { kind: 'deliver', removed };
}

export function describeRemoval(r: RemovedPart): string {
  if (r.kind === 'infected') return `infected with ${r.detail ?? 'a virus'}`;
  const why = r.reason === 'encrypted' ? 'encrypted or password protected' : r.reason === 'limits' ? 'exceeds the scanning limits' : 'damaged or unreadable';
  return `could not be scanned (${why}${r.detail ? `: ${r.detail}` : ''})`;
}

/** The name shown in the notice: the file name, else what the part was. */
export function removedName(r: RemovedPart & { node: MessagePart }): string {
  if (r.filename) return r.filename;
  if (r.node.kind === 'region') return `encoded content in the text of part ${r.part}`;
  if (r.node.kind === 'container') return `${r.node.contentType} part ${r.part}`;
  return `part ${r.part} (${r.node.contentType})`;
}
