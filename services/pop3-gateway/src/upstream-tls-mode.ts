import { ConfigError } from '@mailwarden/config';

/**
 * POP3_UPSTREAM_TLS: how the gateway reaches upstream. `plain` (default): a plain connection,
 * upgraded with STLS in terminate mode when upstream offers it. `implicit`: upstream is a POP3S
 * server (TLS from the first byte; certificate checked per UPSTREAM_TLS_VERIFY / UPSTREAM_TLS_CA).
 */
export type UpstreamTlsMode = 'plain' | 'implicit';

export function parseUpstreamTlsMode(value: string | undefined): UpstreamTlsMode {
  const v = (value ?? '').trim().toLowerCase();
  if (v === '' || v === 'plain') return 'plain';
  if (v === 'implicit') return 'implicit';
  throw new ConfigError(`POP3_UPSTREAM_TLS: expected "plain" or "implicit", got "${value}"`);
}
