/** Shared by the local-stack tests (no tests in here). */
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { TestContext } from 'node:test';

/** Debian's own python: sees apt's python3-* modules (FACTS.md). */
export const PYTHON = '/usr/bin/python3';

export async function tempStateDir(prefix = 'mw-local-stack-'): Promise<{ dir: string; cleanup(): Promise<void> }> {
  const dir = await mkdtemp(join(tmpdir(), prefix));
  return { dir, cleanup: () => rm(dir, { recursive: true, force: true }) };
}

/**
 * The apt binaries are installed by scripts/bootstrap.mjs (npm test runs it first): missing
 * ones fail the test, unless bootstrap was told not to install (MAILWARDEN_SKIP_APT=1): then skip.
 * Returns false when the test was skipped.
 */
export function needBinaries(t: TestContext, ...paths: string[]): boolean {
  const missing = paths.filter((p) => !existsSync(p));
  if (!missing.length) return true;
  const msg = `missing ${missing.join(', ')}: run \`node scripts/bootstrap.mjs\``;
  if (process.env.MAILWARDEN_SKIP_APT === '1') {
    t.skip(msg);
    return false;
  }
  throw new Error(msg);
}

/** Dovecot serves mail as uid 65534 and must run as root. */
export function needRoot(t: TestContext): boolean {
  if (process.getuid?.() === 0) return true;
  t.skip('needs root (Dovecot)');
  return false;
}

export interface RunResult {
  code: number | null;
  stdout: Buffer;
  stderr: string;
}

/** Runs a command with a deadline; stdin from `input`. */
export function run(cmd: string, args: string[], input?: Buffer | string, timeoutMs = 30_000): Promise<RunResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { stdio: ['pipe', 'pipe', 'pipe'] });
    const out: Buffer[] = [];
    let err = '';
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`${cmd} ${args.join(' ')}: timed out after ${timeoutMs} ms\n${err}`));
    }, timeoutMs);
    child.stdout.on('data', (d: Buffer) => out.push(d));
    child.stderr.setEncoding('utf8').on('data', (d: string) => (err += d));
    child.on('error', (e) => {
      clearTimeout(timer);
      reject(e);
    });
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout: Buffer.concat(out), stderr: err });
    });
    child.stdin.end(input ?? '');
  });
}

/** Runs a Python script (argv after the script) with Debian's python3. */
export function python(script: string, args: string[], input?: Buffer | string, timeoutMs?: number): Promise<RunResult> {
  return run(PYTHON, ['-c', script, ...args], input, timeoutMs);
}

export function hostPort(address: string): [string, string] {
  const i = address.lastIndexOf(':');
  return [address.slice(0, i), address.slice(i + 1)];
}
