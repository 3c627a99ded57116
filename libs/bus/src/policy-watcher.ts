import { DEFAULT_POLICY, type Policy, type PolicyDocument } from '@mailwarden/contracts';
import type { Logger } from '@mailwarden/log';
import type { PolicyStore } from './policy-store.js';

/** Holds the policy this process runs now; changes apply to the next session or message, no restart. */
export class PolicyWatcher {
  private doc: PolicyDocument = { version: 0, updatedAt: new Date(0).toISOString(), policy: DEFAULT_POLICY };
  private readonly listeners: ((policy: Policy) => void)[] = [];

  static async start(store: PolicyStore, log: Logger, signal?: AbortSignal): Promise<PolicyWatcher> {
    const w = new PolicyWatcher();
    // Read only: seeding is for mailwarden-init and the config service. No policy yet = the defaults.
    const stored = await store.read();
    if (stored) w.doc = stored;
    log.info({ event: 'policy.applied', version: w.doc.version }, `running policy version ${w.doc.version}`);
    await store.watch((doc) => {
      if (doc.version <= w.doc.version) return;
      w.doc = doc;
      for (const l of w.listeners) l(doc.policy);
      log.info({ event: 'policy.applied', version: doc.version }, `running policy version ${doc.version}`);
    }, signal);
    return w;
  }

  /** For tests and tools that run without NATS. */
  static fixed(policy: Policy): PolicyWatcher {
    const w = new PolicyWatcher();
    w.doc = { version: 1, updatedAt: new Date().toISOString(), policy };
    return w;
  }

  /** For settings fixed at construction elsewhere (e.g. the advertised SIZE). */
  onChange(listener: (policy: Policy) => void): void {
    this.listeners.push(listener);
  }

  get policy(): Policy {
    return this.doc.policy;
  }
  get version(): number {
    return this.doc.version;
  }
}
