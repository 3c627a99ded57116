export interface NoticeVars {
  filename: string;
  reason: string;
  date: string;
  /** The reference to quote: the quarantine reference when the original was kept. */
  ref: string;
  /** The policy's `quarantine.retentionDays` (0: nothing was kept). Default 0. */
  retentionDays?: number;
}

/** What `{recovery}` says: whether the original can be had, and for how long. */
export function recoveryText(retentionDays: number): string {
  if (retentionDays <= 0) return 'The removed attachment was not kept and cannot be recovered.';
  const days = Number.isInteger(retentionDays) ? String(retentionDays) : retentionDays.toFixed(2).replace(/\.?0+$/, '');
  return `Contact your mail administrator and quote the message reference if you need the original attachment: it is kept for ${days} day${days === '1' ? '' : 's'}.`;
}

/**
 * Fills a notice template: `{filename}`, `{reason}`, `{date}`, `{ref}`, `{retentionDays}` and
 * `{recovery}` (a sentence that depends on the retention: how to get the original back, or that it
 * was not kept) are replaced in one pass, so a value containing a placeholder is not expanded
 * again; any other `{...}` is left as is. Line endings, in the template and in the values, become CRLF.
 */
export function renderNotice(template: string, vars: NoticeVars): string {
  const retention = vars.retentionDays ?? 0;
  const values: Record<string, string> = {
    filename: vars.filename,
    reason: vars.reason,
    date: vars.date,
    ref: vars.ref,
    retentionDays: String(retention),
    recovery: recoveryText(retention),
  };
  return template
    .replace(/\{(filename|reason|date|ref|retentionDays|recovery)\}/g, (_match, name: string) => values[name]!)
    .replace(/\r\n|\r|\n/g, '\r\n');
}
