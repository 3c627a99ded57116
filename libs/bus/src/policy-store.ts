import type { KV, KvEntry, Kvm } from '@nats-io/kv';
import { Buckets, DEFAULT_POLICY, POLICY_KEY, Policy, decode, type PolicyDocument } from '@mailwarden/contracts';
import { Type } from '@sinclair/typebox';

const StoredPolicy = Type.Object({ updatedAt: Type.String(), policy: Policy, changedBy: Type.Optional(Type.String()) });

export class PolicyConflictError extends Error {
  override name = 'PolicyConflictError';
}

function toDocument(entry: KvEntry): PolicyDocument {
  const stored = decode(StoredPolicy, entry.value);
  return { version: entry.revision, updatedAt: stored.updatedAt, policy: stored.policy };
}

/** The policy document in NATS KV; its revision is the policy version, its history the audit trail. */
export class PolicyStore {
  private constructor(private readonly kv: KV) {}

  /** Creates the bucket when missing (only with the rights of mailwarden-init); else reads its info only. */
  static async open(kvm: Kvm): Promise<PolicyStore> {
    return new PolicyStore(await kvm.create(Buckets.policy, { history: 64 }));
  }

  /** Writes the defaults unless a policy exists (needs the right to write the policy: config, mailwarden-init). */
  async seedDefaults(): Promise<void> {
    try {
      await this.kv.create(POLICY_KEY, JSON.stringify({ updatedAt: new Date().toISOString(), policy: DEFAULT_POLICY, changedBy: 'defaults' }));
    } catch {
      // Already there: somebody seeded or configured it.
    }
  }

  /** The stored policy, or undefined when none is (read-only: what the gateways and workers may do). */
  async read(): Promise<PolicyDocument | undefined> {
    const e = await this.kv.get(POLICY_KEY);
    return e && e.operation === 'PUT' ? toDocument(e) : undefined;
  }

  /** The stored policy; seeds the defaults first when there is none. */
  async get(): Promise<PolicyDocument> {
    const e = await this.kv.get(POLICY_KEY);
    if (!e || e.operation !== 'PUT') {
      await this.seedDefaults();
      const seeded = await this.kv.get(POLICY_KEY);
      if (!seeded) throw new Error('policy missing after seeding');
      return toDocument(seeded);
    }
    return toDocument(e);
  }

  /** Replaces the policy; with `expectedVersion` fails with PolicyConflictError if someone wrote in between. */
  async put(policy: Policy, opts: { expectedVersion?: number; changedBy?: string } = {}): Promise<PolicyDocument> {
    const value = JSON.stringify({ updatedAt: new Date().toISOString(), policy: decode(Policy, policy), changedBy: opts.changedBy });
    let revision: number;
    if (opts.expectedVersion !== undefined) {
      try {
        revision = await this.kv.update(POLICY_KEY, value, opts.expectedVersion);
      } catch (err) {
        throw new PolicyConflictError(`policy changed since version ${opts.expectedVersion}`, { cause: err });
      }
    } else {
      revision = await this.kv.put(POLICY_KEY, value);
    }
    const e = await this.kv.get(POLICY_KEY, { revision });
    if (!e) throw new Error(`policy revision ${revision} not readable`);
    return toDocument(e);
  }

  async history(): Promise<(PolicyDocument & { changedBy?: string })[]> {
    const out: (PolicyDocument & { changedBy?: string })[] = [];
    const it = await this.kv.history({ key: POLICY_KEY });
    for await (const e of it) {
      if (e.operation !== 'PUT') continue;
      const stored = decode(StoredPolicy, e.value);
      out.push({ version: e.revision, updatedAt: stored.updatedAt, policy: stored.policy, changedBy: stored.changedBy });
    }
    return out;
  }

  /** Calls `onChange` with the current document and then with every change, until `signal` aborts. */
  async watch(onChange: (doc: PolicyDocument) => void, signal?: AbortSignal): Promise<void> {
    const iter = await this.kv.watch({ key: POLICY_KEY });
    signal?.addEventListener('abort', () => iter.stop(), { once: true });
    void (async () => {
      for await (const e of iter) {
        if (e.operation !== 'PUT') continue;
        try {
          onChange(toDocument(e));
        } catch {
          // An invalid document written behind our back is ignored; the last valid policy stays.
        }
      }
    })();
  }
}
