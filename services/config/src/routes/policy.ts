import type { FastifyInstance, FastifyRequest } from 'fastify';
import { Type } from '@sinclair/typebox';
import { Policy, type PolicyDocument } from '@mailwarden/contracts';
import { PolicyConflictError } from '@mailwarden/bus';
import { HttpError } from '../http-errors.js';
import { diffPolicies } from '../policy-diff.js';
import { ErrorBody, HistoryBody, PolicyDocumentBody, type HistoryEntry } from '../schemas.js';

/** The part of PolicyStore (@mailwarden/bus) the API uses. */
export interface PolicyApi {
  get(): Promise<PolicyDocument>;
  put(policy: Policy, opts?: { expectedVersion?: number; changedBy?: string }): Promise<PolicyDocument>;
  history(): Promise<(PolicyDocument & { changedBy?: string })[]>;
}

const etag = (version: number) => `"${version}"`;

/**
 * If-Match → the version the client last saw; `undefined` for `*` or no header (write whatever
 * is there, still atomically). An ETag we never issued can never match: -1.
 */
export function parseIfMatch(header: string | undefined): number | undefined {
  if (header === undefined || header.trim() === '' || header.trim() === '*') return undefined;
  const m = /^\s*(?:W\/)?"?(\d{1,15})"?\s*$/.exec(header);
  return m ? Number(m[1]) : -1;
}

/** Who made a change, for the history: `X-Changed-By` (the admin UI sends "admin-ui"), else "api". */
function changedBy(request: FastifyRequest): string {
  const h = request.headers['x-changed-by'];
  const who = (Array.isArray(h) ? h[0] : h)?.replace(/[^\x20-\x7e]/g, '').trim().slice(0, 64);
  return `${who || 'api'} (${request.ip})`;
}

async function storeCall<T>(what: string, call: () => Promise<T>): Promise<T> {
  try {
    return await call();
  } catch (err) {
    if (err instanceof HttpError || err instanceof PolicyConflictError) throw err;
    throw new HttpError(503, 'unavailable', `policy store unavailable (${what}): ${(err as Error).message}`, {}, { cause: err });
  }
}

const errors = { 400: ErrorBody, 401: ErrorBody, 412: ErrorBody, 503: ErrorBody };

export async function policyRoutes(app: FastifyInstance, opts: { store: PolicyApi }): Promise<void> {
  const { store } = opts;

  app.get(
    '/policy',
    {
      schema: {
        summary: 'The policy now in force',
        description: 'The ETag header carries the version; send it back in If-Match when you PUT.',
        tags: ['policy'],
        response: { 200: PolicyDocumentBody, 401: ErrorBody, 503: ErrorBody },
      },
    },
    async (_request, reply) => {
      const doc = await storeCall('get', () => store.get());
      reply.header('etag', etag(doc.version));
      return doc;
    },
  );

  app.put(
    '/policy',
    {
      schema: {
        summary: 'Replace the whole policy',
        description:
          'Applied by every service within a second. With `If-Match: "<version>"` the write only succeeds if nobody changed the policy since ' +
          'that version (else 412); without If-Match the write is unconditional but still atomic. Invalid input gets 400 naming the field.',
        tags: ['policy'],
        headers: Type.Object({
          'if-match': Type.Optional(Type.String({ description: 'the ETag from GET, e.g. "7"' })),
          'x-changed-by': Type.Optional(Type.String({ description: 'who is changing it, kept in the history' })),
        }),
        body: Policy,
        response: { 200: PolicyDocumentBody, ...errors },
      },
    },
    async (request, reply) => {
      const expectedVersion = parseIfMatch(request.headers['if-match']);
      const policy = request.body as Policy;
      const by = changedBy(request);
      let doc: PolicyDocument;
      try {
        doc = await storeCall('put', () => store.put(policy, { ...(expectedVersion !== undefined ? { expectedVersion } : {}), changedBy: by }));
      } catch (err) {
        if (!(err instanceof PolicyConflictError) || expectedVersion === undefined) throw err;
        const current = await storeCall('get', () => store.get());
        // PolicyStore reports any failed conditional write as a conflict: only a moved version is one.
        if (current.version === expectedVersion) throw new HttpError(503, 'unavailable', `policy store unavailable (put): ${err.message}`, {}, { cause: err });
        throw new HttpError(
          412,
          'precondition_failed',
          `the policy was changed by someone else since version ${expectedVersion < 0 ? '(unknown)' : expectedVersion}; the current version is ${current.version}. Reload it, reapply your change and save again.`,
          { currentVersion: current.version },
        );
      }
      request.log.info({ event: 'policy.updated', version: doc.version, changedBy: by }, `policy version ${doc.version} saved`);
      reply.header('etag', etag(doc.version));
      return doc;
    },
  );

  app.get(
    '/policy/history',
    {
      schema: {
        summary: 'Every kept version of the policy, newest first, with what changed',
        description: 'Each entry lists the changed fields (dotted paths) with their old and new values, compared with the previous kept version.',
        tags: ['policy'],
        response: { 200: HistoryBody, 401: ErrorBody, 503: ErrorBody },
      },
    },
    async () => {
      const versions = await storeCall('history', () => store.history());
      versions.sort((a, b) => a.version - b.version);
      const entries: HistoryEntry[] = versions.map((v, i) => {
        const prev = i > 0 ? versions[i - 1] : undefined;
        const entry: HistoryEntry = {
          version: v.version,
          time: v.updatedAt,
          previousVersion: prev?.version ?? null,
          changes: diffPolicies(prev?.policy, v.policy),
          policy: v.policy,
        };
        if (v.changedBy !== undefined) entry.changedBy = v.changedBy;
        return entry;
      });
      return { entries: entries.reverse() };
    },
  );
}
