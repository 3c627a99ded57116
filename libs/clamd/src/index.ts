export {
  CLAMD_BALANCES,
  ClamdClient,
  ClamdError,
  DATABASE_PROBE,
  MAX_CHUNK_BYTES,
  classifyReply,
  engineIdentity,
  formatClamdAddress,
  parseClamdAddress,
  parseClamdAddresses,
  parseClamdBalance,
  type ClamdBalance,
  type ClamdAddress,
  type ClamdClientOptions,
  type PreferredEngine,
  type ReplyClassification,
  type ScanOutcome,
  type ScanResult,
  type ScanSource,
  type UnscannableReason,
} from './clamd-client.js';
export { CLAMAV_DEPLOY_DIR, regenerateDatabaseProbe, renderClamdConfig, startClamd, type RunningClamd, type StartClamdOptions } from './clamd-daemon.js';
export { freePort } from './free-port.js';
