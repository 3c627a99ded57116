/**
 * Deployment settings: one table, documented defaults, overridable from the environment.
 * The README's table of variables is generated from the same entries (print-config --markdown).
 */
export interface Setting {
  env: string;
  default: string;
  help: string;
}

export const SETTINGS = [
  { env: 'NATS_URL', default: 'nats://127.0.0.1:4222', help: 'NATS server with JetStream (comma list for a cluster); `tls://host:port` requires TLS' },
  { env: 'NATS_USER', default: '', help: 'this service\'s NATS user (deploy/nats/auth.conf: one per service, each with only the subjects it needs); empty = no authentication' },
  { env: 'NATS_PASSWORD', default: '', help: 'password of NATS_USER' },
  { env: 'NATS_CA', default: '', help: 'PEM CA file to verify the NATS server\'s certificate against (implies TLS)' },
  { env: 'S3_ENDPOINT', default: 'http://127.0.0.1:9000', help: 'S3-compatible endpoint (MinIO in production)' },
  { env: 'S3_ACCESS_KEY', default: 'mailwarden', help: 'S3 access key' },
  { env: 'S3_SECRET_KEY', default: 'mailwarden-secret', help: 'S3 secret key' },
  { env: 'S3_BUCKET', default: 'mailwarden', help: 'bucket for raw messages, parts and rebuilt messages (created when missing)' },
  { env: 'S3_REGION', default: 'us-east-1', help: 'S3 region' },
  { env: 'S3_REQUEST_TIMEOUT_MS', default: '10000', help: 'deadline for one small S3 request to answer in full (stat, delete, start and completion of a multipart upload, the first byte of a read)' },
  { env: 'S3_IDLE_TIMEOUT_MS', default: '30000', help: 'an S3 transfer (upload of a part, streamed read) that moves no byte for this long is aborted' },
  { env: 'CLAMD_ADDRESSES', default: '127.0.0.1:3310', help: 'clamd addresses, `host:port` or `unix:/path`, tried in order (failover)' },
  { env: 'CLAMD_BALANCE', default: 'failover', help: 'how scans use several CLAMD_ADDRESSES: `failover` = the first one, the others on its failure; `round-robin` = each scan starts with the next address in turn (then fails over), an engine that just failed is tried last for 5 s' },
  { env: 'CLAMD_CONNECT_TIMEOUT_MS', default: '2000', help: 'deadline to connect to one clamd' },
  { env: 'CLAMD_SCAN_TIMEOUT_MS', default: '60000', help: 'deadline for one part scan' },
  { env: 'SMTP_LISTEN', default: '127.0.0.1:2525', help: 'inbound SMTP listener (Internet → local mail server)' },
  { env: 'SMTP_UPSTREAM', default: '', help: 'inbound upstream SMTP server; `npm start` uses its local mailbox when empty' },
  { env: 'SMTP_OUTBOUND_LISTEN', default: '', help: 'optional outbound SMTP listener (local clients → outside)' },
  { env: 'SMTP_OUTBOUND_UPSTREAM', default: '', help: 'upstream for the outbound listener' },
  { env: 'SMTP_HOSTNAME', default: 'mailwarden.local', help: 'name the gateway uses in its greeting and EHLO' },
  { env: 'SMTP_TIMEOUT_MS', default: '30000', help: 'deadline for one upstream SMTP command' },
  { env: 'SMTP_DATA_REPLY_TIMEOUT_MS', default: '600000', help: 'deadline for upstream\'s reply after the end of a message (RFC 5321 4.5.3.2.6: 10 min); giving up earlier risks a duplicate' },
  { env: 'SMTP_MAX_CONNECTIONS', default: '500', help: 'SMTP sessions per listener at once; past it a client gets `421 4.7.0 too many connections`' },
  { env: 'SMTP_UPSTREAM_XCLIENT', default: 'auto', help: 'tell upstream the real client (address, name, protocol, HELO): `auto` = XCLIENT or XFORWARD when upstream offers it, `off` = never' },
  { env: 'SCAN_TIMEOUT_MS', default: '120000', help: 'deadline from the end of a message (last byte received) to its result: rest of the upload, scan, rebuild; past it the client gets 451 4.3.0' },
  { env: 'POP3_LISTEN', default: '127.0.0.1:1110', help: 'POP3 listener' },
  { env: 'POP3_UPSTREAM', default: '', help: 'upstream POP3 server; `npm start` uses its local mailbox when empty' },
  { env: 'POP3_MAX_CONNECTIONS', default: '500', help: 'POP3 sessions per listener at once; past it a client gets `-ERR [SYS/TEMP] too many connections`' },
  { env: 'POP3_REQUIRE_UPSTREAM_TLS', default: 'false', help: 'terminate mode: `true` refuses a session (`-ERR [SYS/TEMP]`) when upstream offers no STLS; `false` goes on in the clear with a warning (`pop3.upstream_plaintext`)' },
  { env: 'POP3_UPSTREAM_TLS', default: 'plain', help: 'how the POP3 gateway reaches POP3_UPSTREAM: `plain` (upgraded with STLS in terminate mode when upstream offers it) or `implicit` (POP3S upstream)' },
  { env: 'CONFIG_LISTEN', default: '127.0.0.1:8025', help: 'config service (REST API and admin UI)' },
  { env: 'ADMIN_TOKEN', default: '', help: 'bearer token for the REST API; `npm start` generates one when empty' },
  { env: 'QUARANTINE_SWEEP_INTERVAL_MS', default: '3600000', help: 'how often the config service deletes quarantine entries older than the policy\'s `quarantine.retentionDays` (and refreshes the quarantine size metrics); works on any S3, lifecycle rule or not' },
  { env: 'SMTPS_LISTEN', default: '', help: 'optional implicit-TLS SMTP listener (port 465 style; always terminates TLS)' },
  { env: 'POP3S_LISTEN', default: '', help: 'optional implicit-TLS POP3 listener (port 995 style; always terminates TLS)' },
  { env: 'TLS_CERT', default: '', help: 'PEM certificate file for STARTTLS/STLS terminate mode and SMTPS/POP3S; reloaded when it changes. Empty: a self-signed one is generated in MAILWARDEN_STATE_DIR/tls' },
  { env: 'TLS_KEY', default: '', help: 'PEM private key file for TLS_CERT' },
  { env: 'UPSTREAM_TLS_VERIFY', default: 'false', help: 'verify the upstream servers\' certificates when the gateway opens TLS to them (terminate mode, implicit-TLS upstream)' },
  { env: 'UPSTREAM_TLS_CA', default: '', help: 'PEM CA file to verify upstream certificates against (implies UPSTREAM_TLS_VERIFY=true)' },
  { env: 'MAILWARDEN_STATE_DIR', default: '.local', help: 'local state: generated certificate and admin token' },
  { env: 'SCAN_CACHE', default: 'on', help: 'scan identical part content (sha256) once per signature database, remembered in NATS KV; `off` to scan everything' },
  { env: 'SCAN_CACHE_TTL_MS', default: '86400000', help: 'how long a cached verdict is kept' },
  { env: 'SCAN_CACHE_VERSION_CHECK_MS', default: '60000', help: 'how often the scanner re-learns the identity of each clamd (VERSION + database probe); a new identity starts a new cache' },
  { env: 'SCAN_CACHE_MIN_BYTES', default: '8192', help: 'contents smaller than this are scanned without the cache (a text body is unique to its message and cheaper to scan than to look up)' },
  { env: 'SCAN_CACHE_EPOCH', default: '', help: 'operator override: change to invalidate every cached verdict at once (not needed for a database change)' },
  { env: 'SCANNER_CONCURRENCY', default: '4', help: 'messages one scanner process analyses at once' },
  { env: 'SCANNER_PART_CONCURRENCY', default: '4', help: 'contents of one message a scanner sends to clamd at once' },
  { env: 'SCANNER_MEMORY_BYTES', default: '16777216', help: 'messages up to this size are read into the scanner with one GET; larger ones are read by range (bounded memory)' },
  { env: 'ANALYSIS_MAX_PARTS', default: '1000', help: 'MIME parts one message may have; more is refused with 554 5.6.0 (POP3: the message is replaced by a notice)' },
  { env: 'ANALYSIS_MAX_DEPTH', default: '40', help: 'nesting depth of multiparts, embedded messages and encoded contents; deeper is refused like too many parts' },
  { env: 'ANALYSIS_MAX_HEADER_BYTES', default: '1048576', help: 'size of one header block; larger is refused like too many parts' },
  { env: 'REASSEMBLER_CONCURRENCY', default: '8', help: 'verdicts one reassembler process handles at once' },
  { env: 'OPS_LISTEN', default: '127.0.0.1:0', help: 'ops endpoint (/healthz, /readyz, /metrics); `127.0.0.1:0` = a free loopback port (logged), `off` = none; containers use 0.0.0.0:9090' },
  { env: 'LOG_LEVEL', default: 'info', help: 'pino log level' },
] as const satisfies readonly Setting[];

export type SettingName = (typeof SETTINGS)[number]['env'];
