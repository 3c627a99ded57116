export interface NoticeVars {
  filename: string;
  reason: string;
  date: string;
  ref: string;
}

/**
 * Fills a notice template: `{filename}`, `{reason}`, `{date}` and `{ref}` are replaced (in one
 * pass, so a value containing a placeholder is not expanded again); any other `{...}` is left as
 * is. Line endings, in the template and in the values, become CRLF.
 */
export function renderNotice(template: string, vars: NoticeVars): string {
  return template
    .replace(/\{(filename|reason|date|ref)\}/g, (_match, name: keyof NoticeVars) => vars[name])
    .replace(/\r\n|\r|\n/g, '\r\n');
}
