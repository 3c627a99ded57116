/**
 * CAPA tags (RFC 2449 6, RFC 3206, RFC 5034) the proxy relays because it handles them:
 * TOP (served from the scanned message), UIDL, USER, SASL (continuations relayed), RESP-CODES and
 * AUTH-RESP-CODE (upstream's codes pass through, ours are [SYS/TEMP]), and EXPIRE / LOGIN-DELAY,
 * which only describe upstream's policy and stay true through the proxy.
 *
 * Dropped: STLS (TLS is not handled yet, `tls.pop3` is `strip`), PIPELINING (commands are taken
 * one at a time and not advertised as pipelined), UTF8 and LANG (RFC 6856: commands the proxy does
 * not know), IMPLEMENTATION (names upstream's software), and anything else unknown.
 */
const RELAYED = new Set(['TOP', 'UIDL', 'USER', 'SASL', 'RESP-CODES', 'AUTH-RESP-CODE', 'EXPIRE', 'LOGIN-DELAY']);

/** Upstream's capability lines, filtered to those the proxy handles, in upstream's order. */
export function filterCapabilities(lines: readonly string[]): string[] {
  return lines.filter((line) => RELAYED.has(line.split(' ', 1)[0]!.toUpperCase()));
}
