import { execFile } from 'node:child_process';
import { mkdir, rename, rm } from 'node:fs/promises';
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
  // Written aside and renamed into place (key first): two gateways starting together on one state
  // dir must never leave a key and a certificate that do not belong together.
  const tmp = `.${process.pid}.${Date.now()}`;
  await run(
    'openssl',
    ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-sha256', '-days', '825', '-subj', `/CN=${hostname}`, '-addext', `subjectAltName=DNS:${hostname},DNS:localhost,IP:127.0.0.1`, '-keyout', key + tmp, '-out', cert + tmp],
    { timeout: 30_000 },
  );
  if (existsSync(cert) && existsSync(key)) {
    await Promise.all([rm(key + tmp, { force: true }), rm(cert + tmp, { force: true })]);
    return { cert, key, created: false };
  }
  await rename(key + tmp, key);
  await rename(cert + tmp, cert);
  return { cert, key, created: true };
}
