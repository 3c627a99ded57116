export {
  ClamdClient,
  ClamdError,
  MAX_CHUNK_BYTES,
  classifyReply,
  formatClamdAddress,
  parseClamdAddress,
  parseClamdAddresses,
  type ClamdAddress,
  type ClamdClientOptions,
  type ReplyClassification,
  type ScanOutcome,
  type ScanSource,
  type UnscannableReason,
} from './clamd-client.js';
export { CLAMAV_DEPLOY_DIR, renderClamdConfig, startClamd, type RunningClamd, type StartClamdOptions } from './clamd-daemon.js';
export { freePort } from './free-port.js';
