import type { Pop3Reply } from './pop3-reply.js';

/**
 * LIST and STAT come from upstream, but RETR sends the scanned copy, which is smaller or larger
 * when a part was replaced by its notice or the subject marked; a client that checks what it got
 * against LIST (RFC 1939 5 asks for the exact size) would see a mismatch. These restate upstream's
 * answers with the delivered size wherever the session knows it: a message retrieved (or scanned
 * ahead by size-lookahead.ts) in this session, or remembered from an earlier one. Only a message
 * the look-ahead could not reach (budget spent, scan failed, look-ahead off) keeps upstream's size.
 */

/** `n size…` (a LIST line, or the text of `+OK n size…`) with the delivered size when it is known. */
export function restateListLine(line: string, delivered: (n: number) => number | undefined): string {
  const m = /^(\d+) (\d+)(.*)$/.exec(line);
  const size = m ? delivered(Number(m[1])) : undefined;
  return m && size !== undefined ? `${m[1]} ${size}${m[3]}` : line;
}

/** `+OK n size` of a single LIST. */
export function restateListReply(reply: Pop3Reply, delivered: (n: number) => number | undefined): Pop3Reply {
  if (!reply.ok) return reply;
  const text = restateListLine(reply.text, delivered);
  return text === reply.text ? reply : { ...reply, text, line: `+OK ${text}` };
}

/** `+OK count octets` with the octets of the retrieved messages as delivered. */
export function restateStat(reply: Pop3Reply, difference: number): Pop3Reply {
  const m = /^(\d+) (\d+)(.*)$/.exec(reply.text);
  if (!reply.ok || !m || !difference) return reply;
  const text = `${m[1]} ${Math.max(0, Number(m[2]) + difference)}${m[3]}`;
  return { ...reply, text, line: `+OK ${text}` };
}
