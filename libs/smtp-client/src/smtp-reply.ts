/** An SMTP reply as read from a server: `250-first`, `250 last` → { code: 250, lines: ['first', 'last'] }. */
export interface SmtpReply {
  code: number;
  lines: string[];
}

export const replyText = (r: SmtpReply): string => r.lines.join(' ').trim();
