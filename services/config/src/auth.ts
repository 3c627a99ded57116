import { createHash, timingSafeEqual } from 'node:crypto';
import type { FastifyReply, FastifyRequest } from 'fastify';

const digest = (s: string) => createHash('sha256').update(s, 'utf8').digest();

/**
 * `Authorization: Bearer <token>` checked in constant time (both sides hashed to the same length
 * first, so neither the content nor the length of the token leaks through timing).
 * A missing or wrong token gets 401 with a JSON body and a WWW-Authenticate challenge (RFC 6750).
 */
export function bearerAuth(adminToken: string) {
  if (!adminToken) throw new Error('bearerAuth: an admin token is required');
  const expected = digest(adminToken);
  return async function checkBearer(request: FastifyRequest, reply: FastifyReply): Promise<void> {
    const header = request.headers.authorization;
    const m = header ? /^Bearer[ \t]+([^\s]+)[ \t]*$/i.exec(header) : null;
    if (!m) {
      reply
        .code(401)
        .header('www-authenticate', 'Bearer realm="mailwarden"')
        .send({ statusCode: 401, error: 'unauthorized', message: 'missing bearer token: send "Authorization: Bearer <ADMIN_TOKEN>"' });
      return reply;
    }
    if (!timingSafeEqual(digest(m[1]!), expected)) {
      request.log.warn({ event: 'auth.rejected', ip: request.ip }, 'wrong admin token');
      reply
        .code(401)
        .header('www-authenticate', 'Bearer realm="mailwarden", error="invalid_token", error_description="the admin token is wrong"')
        .send({ statusCode: 401, error: 'unauthorized', message: 'the admin token is wrong' });
      return reply;
    }
  };
}
