import { randomBytes } from 'node:crypto';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';

export const ADMIN_TOKEN_FILE = 'admin-token';

export interface ResolvedAdminToken {
  token: string;
  /** `env`: ADMIN_TOKEN was set; `file`: read from the state dir; `generated`: new, written there now (print it once). */
  source: 'env' | 'file' | 'generated';
  /** The file holding it (for `file` and `generated`). */
  file?: string;
}

/** 32 random bytes, URL-safe: fits a header, a shell variable and a password field. */
export function generateAdminToken(): string {
  return randomBytes(32).toString('base64url');
}

/**
 * The admin token for a local run: ADMIN_TOKEN when set; else the one kept in
 * `<stateDir>/admin-token`; else a new one written there (mode 0600) — only then is
 * `source` `generated`, so the caller prints it once, on the first start.
 */
export async function resolveAdminToken(stateDir: string, env: Record<string, string | undefined> = process.env): Promise<ResolvedAdminToken> {
  const fromEnv = env.ADMIN_TOKEN?.trim();
  if (fromEnv) return { token: fromEnv, source: 'env' };
  const file = join(stateDir, ADMIN_TOKEN_FILE);
  const existing = await readToken(file);
  if (existing) return { token: existing, source: 'file', file };
  await mkdir(stateDir, { recursive: true });
  const token = generateAdminToken();
  try {
    await writeFile(file, `${token}\n`, { mode: 0o600, flag: 'wx' });
  } catch (err) {
    // Another process created it first: use theirs.
    const theirs = (err as NodeJS.ErrnoException).code === 'EEXIST' ? await readToken(file) : undefined;
    if (theirs) return { token: theirs, source: 'file', file };
    throw err;
  }
  return { token, source: 'generated', file };
}

async function readToken(file: string): Promise<string | undefined> {
  try {
    return (await readFile(file, 'utf8')).trim() || undefined;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw err;
  }
}
