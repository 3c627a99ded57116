export { buildApp, configService, PUBLIC_DIR, type AppDeps, type BuildOptions, type HealthReport } from './app.js';
export { resolveAdminToken, generateAdminToken, ADMIN_TOKEN_FILE, type ResolvedAdminToken } from './admin-token.js';
export { ActivityLog, MAX_RECENT, eventIdentity, type ActivityView, type Detection, type Stats } from './activity-log.js';
export { EventFeed, parseEvent } from './event-feed.js';
export { ClamdEngineProbe, type EngineProbe, type EngineStatus, type EngineInstance } from './engine-probe.js';
export { diffPolicies, type PolicyChange } from './policy-diff.js';
export { parseIfMatch, type PolicyApi } from './routes/policy.js';
export { Quarantine, QuarantineNotFoundError, type QuarantineDeps, type QuarantineFilter, type QuarantinePage, type SweepReport, type Actor } from './quarantine.js';
export { clamdRescan, type Rescan, type RescanReport } from './quarantine-rescan.js';
