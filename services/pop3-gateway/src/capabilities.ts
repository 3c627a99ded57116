/**
 * CAPA tags (RFC 2449 6, RFC 3206, RFC 5034) the proxy relays because it handles them:
 * TOP (served from the scanned message), UIDL, USER, SASL (continuations relayed), RESP-CODES and
 * AUTH-RESP-CODE (upstream's codes pass through, ours are [SYS/TEMP]), and EXPIRE / LOGIN-DELAY,
 * which only describe upstream's policy and stay true through the proxy.
 *
 * STLS is never relayed as upstream sent it: the session decides from the TLS policy (`stls`).
 * Dropped: PIPELINING (commands are taken one at a time and not advertised as pipelined), UTF8 and
 * LANG (RFC 6856: commands the proxy does not know), IMPLEMENTATION (names upstream's software),
 * and anything else unknown.
 */
const RELAYED = new Set(['TOP', 'UIDL', 'USER', 'SASL', 'RESP-CODES', 'AUTH-RESP-CODE', 'EXPIRE', 'LOGIN-DELAY']);

const tag = (line: string): string => line.split(' ', 1)[0]!.toUpperCase();

/**
 * Upstream's capability lines, filtered to those the proxy handles, in upstream's order; `STLS`
 * last when the session offers it (terminate, or passthrough towards an upstream that has it).
 */
export function filterCapabilities(lines: readonly string[], opts: { stls?: boolean } = {}): string[] {
  const kept = lines.filter((line) => RELAYED.has(tag(line)));
  return opts.stls ? [...kept, 'STLS'] : kept;
}

/** Whether a capability list offers `name` (RFC 2449: the tag is case-insensitive). */
export function hasCapability(lines: readonly string[] | undefined, name: string): boolean {
  return !!lines?.some((line) => tag(line) === name.toUpperCase());
}
