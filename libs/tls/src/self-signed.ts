import { execFile } from 'node:child_process';
import { mkdir } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';

const run = promisify(execFile);

/**
 * Makes (once) a self-signed certificate for `hostname` in `dir`, with the openssl CLI: Node can
 * create keys but not X.509 certificates, and openssl is on every machine that runs the stack.
 */
export async function ensureSelfSigned(dir: string, hostname: string): Promise<{ cert: string; key: string; created: boolean }> {
  const cert = join(dir, 'gateway-cert.pem');
  const key = join(dir, 'gateway-key.pem');
  if (existsSync(cert) && existsSync(key)) return { cert, key, created: false };
  await mkdir(dir, { recursive: true });
  await run(
    'openssl',
    ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-sha256', '-days', '825', '-subj', `/CN=${hostname}`, '-addext', `subjectAltName=DNS:${hostname},DNS:localhost,IP:127.0.0.1`, '-keyout', key, '-out', cert],
    { timeout: 30_000 },
  );
  return { cert, key, created: true };
}
