#!/usr/bin/env node
// Bootstrap a fresh clone: apt packages, node_modules, TypeScript build.
// Runs as `prestart` and `pretest`, BEFORE `npm install`: plain Node, no dependencies.
// Idempotent and quick (< 3 s) when everything is already there.
//
// Environment:
//   MAILWARDEN_SKIP_APT=1    do not check or install apt packages (non-Debian machines)
//   MAILWARDEN_SKIP_BUILD=1  do not run `tsc -b`
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, readdirSync, readFileSync, statSync, unlinkSync, utimesSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const started = Date.now();

/**
 * Debian packages the local stack and the tests need.
 * python3 (+ aiosmtpd) for smtplib/poplib/aiosmtpd in tests, openssl for Dovecot's
 * self-signed certificate: both are usually present, but not in a minimal image.
 */
const APT_PACKAGES = [
  'nats-server',
  'clamav-daemon',
  'clamav-testfiles',
  'dovecot-pop3d',
  'swaks',
  'openssl',
  'python3',
  'python3-aiosmtpd',
  // the admin UI test drives Debian's Chromium with playwright-core (no browser download)
  'chromium',
  // `docker-compose config` validates docker-compose.yml in the tests (no engine needed)
  'docker-compose',
];
/** System daemons the packages' maintainer scripts may start; they would fight our ports. */
const SYSTEM_DAEMONS = ['clamd', 'freshclam', 'dovecot'];

const say = (msg) => console.log(`[bootstrap] ${msg}`);
const fail = (msg, code = 1) => {
  console.error(`[bootstrap] ERROR: ${msg}`);
  process.exit(code);
};

function run(cmd, args, opts = {}) {
  say(`$ ${[cmd, ...args].join(' ')}`);
  const r = spawnSync(cmd, args, { stdio: 'inherit', cwd: root, ...opts });
  if (r.error) return { ok: false, error: r.error };
  return { ok: r.status === 0, status: r.status };
}

// ---------------------------------------------------------------- apt packages
function missingAptPackages() {
  const r = spawnSync('dpkg-query', ['-W', '-f=${Package} ${db:Status-Abbrev}\\n', ...APT_PACKAGES], {
    encoding: 'utf8',
  });
  if (r.error) return null; // no dpkg: not Debian
  const installed = new Set(
    r.stdout
      .split('\n')
      .map((l) => l.trim().split(/\s+/))
      .filter(([, status]) => status === 'ii')
      .map(([name]) => name),
  );
  return APT_PACKAGES.filter((p) => !installed.has(p));
}

/** Processes (pid → argv) whose executable name is one of SYSTEM_DAEMONS. */
function daemonProcesses() {
  const out = new Map();
  let entries;
  try {
    entries = readdirSync('/proc');
  } catch {
    return out;
  }
  for (const e of entries) {
    if (!/^\d+$/.test(e)) continue;
    try {
      const comm = readFileSync(`/proc/${e}/comm`, 'utf8').trim();
      if (!SYSTEM_DAEMONS.includes(comm)) continue;
      const argv = readFileSync(`/proc/${e}/cmdline`, 'utf8').split('\0').filter(Boolean);
      out.set(Number(e), { comm, argv });
    } catch {
      // process went away
    }
  }
  return out;
}

/** A daemon started with the system configuration (not one of ours, which always get `-c`/`--config-file`). */
function isSystemInstance({ comm, argv }) {
  if (comm === 'freshclam') return true; // we never run freshclam (no downloads here)
  if (comm === 'clamd') return !argv.some((a) => a.startsWith('--config-file') || a === '-c') || argv.includes('/etc/clamav/clamd.conf');
  if (comm === 'dovecot') return !argv.includes('-c') || argv.includes('/etc/dovecot/dovecot.conf');
  return false;
}

function ensureAptPackages() {
  if (process.env.MAILWARDEN_SKIP_APT === '1') {
    say('apt: skipped (MAILWARDEN_SKIP_APT=1)');
    return;
  }
  const missing = missingAptPackages();
  if (missing === null) {
    say(`apt: dpkg-query not found (not Debian?) - make sure these are installed: ${APT_PACKAGES.join(' ')}`);
    return;
  }
  if (!missing.length) {
    say('apt: all packages present');
    return;
  }
  const install = ['install', '-y', '--no-install-recommends', ...missing];
  if (process.getuid?.() !== 0) {
    console.error(`[bootstrap] missing apt packages: ${missing.join(' ')}. Run as root:`);
    console.error(
      `  sudo sh -c 'apt-get update && DEBIAN_FRONTEND=noninteractive apt-get ${install.join(' ')}'`,
    );
    process.exit(1);
  }
  say(`apt: installing ${missing.join(' ')}`);
  const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };

  // Keep the maintainer scripts from starting system clamd/freshclam/dovecot: the standard
  // container way is a policy-rc.d that denies every start (exit 101). Removed afterwards.
  const policy = '/usr/sbin/policy-rc.d';
  const ownPolicy = !existsSync(policy);
  if (ownPolicy) writeFileSync(policy, '#!/bin/sh\n# written by mailwarden scripts/bootstrap.mjs during apt-get install\nexit 101\n', { mode: 0o755 });
  const before = daemonProcesses();
  try {
    if (!run('apt-get', ['update'], { env }).ok) fail('apt-get update failed');
    if (!run('apt-get', install, { env }).ok) fail(`apt-get ${install.join(' ')} failed`);
  } finally {
    if (ownPolicy) {
      try {
        unlinkSync(policy);
      } catch {
        // already gone
      }
    }
  }
  // If a maintainer script still started a system daemon (no policy-rc.d support, sysvinit
  // fallbacks), stop it: it would hold 3310/110 or download signatures forever.
  for (const [pid, proc] of daemonProcesses()) {
    if (before.has(pid) || !isSystemInstance(proc)) continue;
    say(`apt: stopping system ${proc.comm} (pid ${pid}) started by the package install`);
    try {
      process.kill(pid, 'SIGTERM');
    } catch {
      // gone already
    }
  }
  const still = missingAptPackages();
  if (still?.length) fail(`apt packages still missing after install: ${still.join(' ')}`);
}

// ---------------------------------------------------------------- node_modules
function mtime(path) {
  try {
    return statSync(path).mtimeMs;
  } catch {
    return 0;
  }
}

function manifestFiles() {
  const files = [join(root, 'package.json'), join(root, 'package-lock.json')];
  for (const ws of ['libs', 'services']) {
    let names;
    try {
      names = readdirSync(join(root, ws));
    } catch {
      continue;
    }
    for (const n of names) files.push(join(root, ws, n, 'package.json'));
  }
  return files.filter((f) => existsSync(f));
}

/**
 * What decides whether node_modules is current: the lock file and every manifest's
 * dependency fields (editing "scripts" or "description" must not trigger an install).
 */
function manifestDigest(files) {
  const h = createHash('sha256');
  for (const f of files) {
    h.update(`\0${f.slice(root.length + 1)}\0`);
    const text = readFileSync(f, 'utf8');
    if (f.endsWith('package-lock.json')) {
      h.update(text);
      continue;
    }
    try {
      const pkg = JSON.parse(text);
      const keys = ['name', 'dependencies', 'devDependencies', 'optionalDependencies', 'peerDependencies', 'workspaces', 'overrides', 'bin'];
      h.update(JSON.stringify(keys.map((k) => pkg[k] ?? null)));
    } catch {
      h.update(text);
    }
  }
  return h.digest('hex');
}

function ensureNodeModules() {
  const modules = join(root, 'node_modules');
  // npm writes node_modules/.package-lock.json at the end of every install: our stamp.
  const stamp = join(modules, '.package-lock.json');
  const digestFile = join(modules, '.mailwarden-bootstrap-digest');
  const stampTime = mtime(stamp);
  const files = manifestFiles();
  const newer = files.filter((f) => mtime(f) > stampTime);
  if (existsSync(modules) && stampTime && !newer.length) {
    if (!existsSync(digestFile)) writeFileSync(digestFile, manifestDigest(files) + '\n');
    say('npm: node_modules up to date');
    return;
  }
  const digest = manifestDigest(files);
  const fresh = !existsSync(modules) || !stampTime;
  if (!fresh && existsSync(digestFile) && readFileSync(digestFile, 'utf8').trim() === digest) {
    // Touched, but no dependency changed.
    const now = new Date();
    utimesSync(stamp, now, now);
    say('npm: node_modules up to date');
    return;
  }
  say(fresh ? 'npm: node_modules missing, installing' : `npm: ${newer.map((f) => f.slice(root.length + 1)).join(', ')} changed, installing`);
  const flags = ['--no-audit', '--no-fund'];
  let ok = false;
  // A fresh clone gets exactly the lock file (`npm ci`). An existing node_modules is
  // updated in place with `npm install`: `npm ci` would delete it under running tests,
  // and refuses a lock file that is out of sync with a package.json someone just edited.
  if (fresh && existsSync(join(root, 'package-lock.json'))) {
    ok = run('npm', ['ci', ...flags]).ok;
    if (!ok) say('npm: `npm ci` failed (lock file out of sync?), falling back to `npm install`');
  }
  if (!ok) ok = run('npm', ['install', ...flags]).ok;
  if (!ok) fail('npm install failed');
  const now = new Date();
  if (existsSync(stamp)) utimesSync(stamp, now, now);
  else writeFileSync(stamp, '{}\n');
  // npm install may have rewritten package-lock.json: digest what is there now.
  writeFileSync(digestFile, manifestDigest(manifestFiles()) + '\n');
}

// ---------------------------------------------------------------- build
function build() {
  if (process.env.MAILWARDEN_SKIP_BUILD === '1') {
    say('build: skipped (MAILWARDEN_SKIP_BUILD=1)');
    return;
  }
  const tsc = join(root, 'node_modules', 'typescript', 'bin', 'tsc');
  if (!existsSync(tsc)) fail('node_modules/typescript is missing after npm install');
  const t0 = Date.now();
  say('build: tsc -b');
  const r = spawnSync(process.execPath, [tsc, '-b'], { stdio: 'inherit', cwd: root });
  if (r.status !== 0) fail('tsc -b failed', r.status ?? 1);
  say(`build: done in ${((Date.now() - t0) / 1000).toFixed(1)} s`);
}

ensureAptPackages();
ensureNodeModules();
build();
say(`ready in ${((Date.now() - started) / 1000).toFixed(1)} s`);
