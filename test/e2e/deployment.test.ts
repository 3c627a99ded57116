/**
 * The production deployment, checked without a Docker engine (issue 6, "what can be checked here
 * is checked in CI"):
 * - docker-compose.yml validates with the v1 client, and refuses to start without the secrets;
 * - every environment variable the services read is documented in .env.example and set in
 *   docker-compose.yml for each service that reads it, with one value everywhere;
 * - deploy/Dockerfile runs the same build commands as CI (scripts/bootstrap.mjs);
 * - scanners and reassemblers scale (no container_name, no host ports);
 * - the NATS and clamd configurations parse with the real servers' own checkers;
 * - the Kubernetes example and the Grafana dashboard parse and use only metrics that exist;
 * - the image's health probe works against a real ops endpoint.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { execFile, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parse, parseAllDocuments } from 'yaml';
import { Registry } from 'prom-client';
import { SETTINGS } from '@mailwarden/config';
import { createMetrics, startOpsServer, type OpsServer } from '@mailwarden/observability';

const root = fileURLToPath(new URL('../../../', import.meta.url));
const read = (rel: string): string => readFileSync(join(root, rel), 'utf8');
const has = (cmd: string): boolean => spawnSync('sh', ['-c', `command -v ${cmd}`], { encoding: 'utf8' }).status === 0;

/** Services that exist only for `npm start` and tests; never in production. */
const LOCAL_ONLY = new Set(['services/dev-mailbox', 'libs/local-stack', 'libs/testkit']);
/** Not read by the services, but by docker-compose itself or the infrastructure images. */
const COMPOSE_ONLY_PREFIXES = ['MINIO_', 'MC_', 'NATS_IMAGE', 'CLAMAV_IMAGE', 'MAILWARDEN_IMAGE', 'FRESHCLAM_', 'TLS_DIR', 'PROMETHEUS_', 'GRAFANA_'];
const isComposeOnly = (name: string) => COMPOSE_ONLY_PREFIXES.some((p) => name.startsWith(p)) || name.endsWith('_PUBLISH');

// ------------------------------------------------------------------ what the code reads
interface EnvRead {
  name: string;
  file: string;
  /** Read as `env.X ?? default`: an empty string is kept, not replaced by the default. */
  nullish: boolean;
}

function sourceFiles(dir: string): string[] {
  if (!existsSync(dir)) return [];
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) => {
    const p = join(dir, e.name);
    if (e.isDirectory()) return sourceFiles(p);
    return e.name.endsWith('.ts') && !e.name.endsWith('.d.ts') ? [p] : [];
  });
}

/**
 * Environment variables read in a source file: `env.X`, `process.env.X`, `env['X']`, and, in a file
 * that looks names up dynamically (`env[name]`), the quoted UPPER_CASE names it passes around.
 */
function envReads(file: string): EnvRead[] {
  const text = readFileSync(file, 'utf8');
  const out = new Map<string, EnvRead>();
  const add = (name: string, nullish = false) => {
    const prev = out.get(name);
    out.set(name, { name, file: file.slice(root.length), nullish: nullish || (prev?.nullish ?? false) });
  };
  for (const m of text.matchAll(/\benv\.([A-Z][A-Z0-9_]*)(\s*\?\?)?/g)) add(m[1]!, !!m[2]);
  for (const m of text.matchAll(/\benv\[\s*['"`]([A-Z][A-Z0-9_]*)['"`]\s*\](\s*\?\?)?/g)) add(m[1]!, !!m[2]);
  if (/\benv\[\s*[a-z]/.test(text) && !file.endsWith(join('libs', 'config', 'src', 'load.ts'))) {
    for (const m of text.matchAll(/['"`]([A-Z][A-Z0-9]*(?:_[A-Z0-9]+)+)['"`]/g)) add(m[1]!);
  }
  return [...out.values()];
}

/** Package directory → the workspace packages it depends on, directly or not (from package.json). */
function dependencyClosure(): Map<string, Set<string>> {
  const dirOf = new Map<string, string>();
  const deps = new Map<string, string[]>();
  for (const group of ['services', 'libs']) {
    for (const name of readdirSync(join(root, group))) {
      const pkg = `${group}/${name}`;
      const manifest = JSON.parse(read(`${pkg}/package.json`)) as { name: string; dependencies?: Record<string, string> };
      dirOf.set(manifest.name, pkg);
      deps.set(pkg, Object.keys(manifest.dependencies ?? {}).filter((d) => d.startsWith('@mailwarden/')));
    }
  }
  const closure = new Map<string, Set<string>>();
  for (const pkg of deps.keys()) {
    const seen = new Set<string>();
    const walk = (p: string): void => {
      for (const d of deps.get(p) ?? []) {
        const dir = dirOf.get(d);
        if (dir && !seen.has(dir)) {
          seen.add(dir);
          walk(dir);
        }
      }
    };
    walk(pkg);
    closure.set(pkg, seen);
  }
  return closure;
}

/** Package directory (`services/x`, `libs/y`) → the variables its sources read. */
function readsByPackage(): Map<string, EnvRead[]> {
  const map = new Map<string, EnvRead[]>();
  for (const group of ['services', 'libs']) {
    for (const name of readdirSync(join(root, group))) {
      const pkg = `${group}/${name}`;
      if (LOCAL_ONLY.has(pkg)) continue;
      map.set(pkg, sourceFiles(join(root, pkg, 'src')).flatMap(envReads));
    }
  }
  return map;
}

// ------------------------------------------------------------------ the deployment files
type ComposeService = {
  image?: string;
  build?: unknown;
  command?: string[] | string;
  environment?: Record<string, string | number | boolean | null>;
  ports?: string[];
  container_name?: string;
  depends_on?: Record<string, { condition: string }> | string[];
  healthcheck?: { test: string[] };
  restart?: string;
};
const composeText = read('docker-compose.yml');
const compose = parse(composeText, { merge: true }) as { version: string; services: Record<string, ComposeService> };

/** The optional Prometheus + Grafana override. */
const MONITORING = 'deploy/monitoring/docker-compose.monitoring.yml';
/** `${NAME:-default}` / `${NAME:?message}` / `${NAME}` occurrences in both compose files (comments aside). */
const composeCode = `${composeText}\n${read(MONITORING)}`.replace(/^\s*#.*$/gm, '');
const interpolations = [...composeCode.matchAll(/\$\{([A-Z_][A-Z0-9_]*)(?:(:?[-?])([^}]*))?\}/g)].map((m) => ({
  name: m[1]!,
  op: m[2] ?? '',
  arg: m[3] ?? '',
}));

/** The Mailwarden services of the compose file, by the package their command runs. */
function mailwardenServices(): Array<{ service: string; pkg: string; def: ComposeService }> {
  return Object.entries(compose.services).flatMap(([service, def]) => {
    const cmd = Array.isArray(def.command) ? def.command.join(' ') : (def.command ?? '');
    const m = /services\/([a-z0-9-]+)\/dist\/src\/main\.js/.exec(cmd);
    return m ? [{ service, pkg: `services/${m[1]}`, def }] : [];
  });
}

/** `.env.example`: NAME → the value shown (`NAME=value` or `# NAME=value`), and whether it is commented. */
function envExample(): Map<string, { value: string; commented: boolean }> {
  const out = new Map<string, { value: string; commented: boolean }>();
  for (const line of read('.env.example').split('\n')) {
    const m = /^(#\s*)?([A-Z][A-Z0-9_]*)=(.*)$/.exec(line);
    if (m) {
      assert.ok(!out.has(m[2]!), `.env.example lists ${m[2]} twice`);
      out.set(m[2]!, { value: m[3]!.trim(), commented: !!m[1] });
    }
  }
  return out;
}

/** Each NATS user of deploy/nats/auth.conf → the variable holding its password (.env, Secret nats-users). */
const NATS_PASSWORD_VARS: Record<string, string> = {
  'mailwarden-init': 'NATS_INIT_PASSWORD',
  'smtp-gateway': 'NATS_SMTP_GATEWAY_PASSWORD',
  'pop3-gateway': 'NATS_POP3_GATEWAY_PASSWORD',
  scanner: 'NATS_SCANNER_PASSWORD',
  reassembler: 'NATS_REASSEMBLER_PASSWORD',
  config: 'NATS_CONFIG_PASSWORD',
};
/** Set per service, to a value of its own: its NATS user. */
const PER_SERVICE = new Set(['NATS_USER', 'NATS_PASSWORD']);

/** A complete .env for `docker-compose config`: the example with every required value filled. */
function filledEnvFile(dir: string): string {
  const fill: Record<string, string> = {
    ADMIN_TOKEN: 'test-admin-token-0123456789',
    MINIO_ROOT_USER: 'minio-admin',
    MINIO_ROOT_PASSWORD: 'minio-admin-password',
    S3_ACCESS_KEY: 'mailwarden',
    S3_SECRET_KEY: 'mailwarden-secret',
    SMTP_UPSTREAM: 'mx.example.test:25',
    POP3_UPSTREAM: 'pop.example.test:110',
    GRAFANA_ADMIN_PASSWORD: 'grafana-admin-password',
    ...Object.fromEntries(Object.values(NATS_PASSWORD_VARS).map((v) => [v, `p${v.toLowerCase()}`])),
  };
  const text = read('.env.example')
    .split('\n')
    .map((line) => {
      const m = /^([A-Z][A-Z0-9_]*)=$/.exec(line);
      return m && fill[m[1]!] ? `${m[1]}=${fill[m[1]!]}` : line;
    })
    .join('\n');
  const file = join(dir, 'env');
  writeFileSync(file, text);
  return file;
}

/** docker-compose with only PATH and HOME from this process: the developer's own S3_* must not leak in. */
function dockerCompose(args: string[], extraEnv: Record<string, string> = {}) {
  return spawnSync('docker-compose', args, {
    cwd: root,
    encoding: 'utf8',
    env: { PATH: process.env.PATH ?? '/usr/bin:/bin', HOME: process.env.HOME ?? '/root', ...extraEnv },
    timeout: 60_000,
  });
}

// ================================================================== docker-compose.yml
describe('docker-compose.yml', () => {
  const skip = has('docker-compose') ? false : 'docker-compose is not installed (apt-get install docker-compose; scripts/bootstrap.mjs installs it)';
  let tmp = '';
  before(() => {
    tmp = mkdtempSync(join(tmpdir(), 'mw-compose-'));
  });
  after(() => rmSync(tmp, { recursive: true, force: true }));

  it('passes `docker-compose config -q` with the required values set', { skip }, () => {
    const r = dockerCompose(['--env-file', filledEnvFile(tmp), '-f', 'docker-compose.yml', 'config', '-q']);
    assert.equal(r.status, 0, `docker-compose config failed:\n${r.stderr}${r.stdout}`);
  });

  it('passes `docker-compose config -q` with the monitoring override too', { skip }, () => {
    const r = dockerCompose(['--env-file', filledEnvFile(tmp), '-f', 'docker-compose.yml', '-f', MONITORING, 'config', '-q']);
    assert.equal(r.status, 0, `docker-compose config failed:\n${r.stderr}${r.stdout}`);
  });

  it('refuses to start without ADMIN_TOKEN and the S3 keys', { skip }, () => {
    const emptyEnv = join(tmp, 'empty-env');
    writeFileSync(emptyEnv, '');
    const r = dockerCompose(['--env-file', emptyEnv, '-f', 'docker-compose.yml', 'config', '-q']);
    assert.notEqual(r.status, 0);
    assert.match(r.stderr, /set [A-Z_]+ in \.env/);
    for (const name of ['ADMIN_TOKEN', 'S3_ACCESS_KEY', 'S3_SECRET_KEY', 'MINIO_ROOT_USER', 'MINIO_ROOT_PASSWORD', 'SMTP_UPSTREAM', 'POP3_UPSTREAM', ...Object.values(NATS_PASSWORD_VARS)]) {
      assert.ok(
        interpolations.some((i) => i.name === name && i.op === ':?'),
        `${name} must be required with \${${name}:?…}`,
      );
    }
  });

  it('uses a file format the v1 client reads (version 3.x, no top-level name)', () => {
    assert.match(String(compose.version), /^3\.\d+$/);
    assert.ok(!('name' in compose), 'top-level `name:` is rejected by docker-compose v1');
  });

  it('runs NATS, MinIO (+ bucket), ClamAV and every Mailwarden service', () => {
    const names = Object.keys(compose.services).sort();
    for (const s of ['nats', 'minio', 'minio-init', 'clamav', 'smtp-gateway', 'pop3-gateway', 'config', 'scanner', 'reassembler']) assert.ok(names.includes(s), `service ${s}`);
    assert.ok(!names.includes('dev-mailbox'), 'dev-mailbox is for local runs only');
    assert.match(compose.services.clamav!.image!, /clamav\/clamav:/);
    assert.match(compose.services.nats!.image!, /(^|\$\{NATS_IMAGE:-)nats:/);
    assert.deepEqual(
      (compose.services.nats!.command as string[]).filter((a) => a === '-js' || a === '-sd' || a === '/data'),
      ['-js', '-sd', '/data'],
    );
  });

  it('lets scanners and reassemblers scale: no container_name, no host ports', () => {
    for (const s of ['scanner', 'reassembler']) {
      const def = compose.services[s]!;
      assert.equal(def.container_name, undefined, `${s} has a container_name`);
      assert.equal(def.ports, undefined, `${s} publishes ports`);
    }
    for (const [name, def] of Object.entries(compose.services)) assert.equal(def.container_name, undefined, `${name}: container_name blocks --scale and a second project`);
  });

  it('builds every Mailwarden service from deploy/Dockerfile, restarts it, and probes its ops port', () => {
    const services = mailwardenServices();
    assert.deepEqual(services.map((s) => s.service).sort(), ['config', 'pop3-gateway', 'reassembler', 'scanner', 'smtp-gateway']);
    for (const { service, pkg, def } of services) {
      assert.ok(existsSync(join(root, pkg, 'src', 'main.ts')), `${service}: ${pkg}/src/main.ts exists`);
      assert.deepEqual(def.build, { context: '.', dockerfile: 'deploy/Dockerfile' }, `${service} build`);
      assert.equal(def.restart, 'unless-stopped', `${service} restart`);
      assert.deepEqual(def.healthcheck?.test, ['CMD', 'node', '/app/deploy/healthcheck.mjs', '/healthz'], `${service} healthcheck`);
      assert.equal(def.environment?.OPS_LISTEN, '0.0.0.0:9090', `${service} OPS_LISTEN`);
    }
    for (const name of ['nats', 'minio', 'clamav']) assert.ok(compose.services[name]!.healthcheck, `${name} has a healthcheck`);
  });
});

// ================================================================== environment variables
describe('environment variables', () => {
  const reads = readsByPackage();
  const example = envExample();
  const closure = dependencyClosure();
  const allRead = new Set([...reads.values()].flat().map((r) => r.name));
  const known = new Set<string>([...SETTINGS.map((s) => s.env), ...allRead, 'OPS_LISTEN']);

  it('finds what the services read (sanity check of the scan)', () => {
    for (const name of ['NATS_URL', 'S3_ENDPOINT', 'CLAMD_ADDRESSES', 'SMTP_UPSTREAM', 'LOG_LEVEL']) assert.ok(allRead.has(name), `${name} not found in the sources`);
  });

  it('documents every variable in .env.example (settings.ts, process.env, OPS_LISTEN)', () => {
    const missing = [...known].filter((name) => !example.has(name)).sort();
    assert.deepEqual(missing, [], `add these to .env.example: ${missing.join(', ')}`);
  });

  it('documents nothing stale: every .env.example variable is read by a service or used by a compose file', () => {
    const used = new Set(interpolations.map((i) => i.name));
    const stale = [...example.keys()].filter((name) => !known.has(name) && !used.has(name)).sort();
    assert.deepEqual(stale, []);
    const undocumented = [...used].filter((name) => !example.has(name)).sort();
    assert.deepEqual(undocumented, [], `docker-compose.yml interpolates variables .env.example does not document: ${undocumented.join(', ')}`);
  });

  it('sets every variable a service reads in that service, and nothing unknown', () => {
    const problems: string[] = [];
    for (const { service, pkg, def } of mailwardenServices()) {
      const env = def.environment ?? {};
      // What the service and the libraries it really uses read (not every library's).
      const libs = [...(closure.get(pkg) ?? [])].flatMap((lib) => reads.get(lib) ?? []);
      const needed = new Set([...(reads.get(pkg) ?? []), ...libs].map((r) => r.name));
      for (const name of needed) if (!(name in env)) problems.push(`${service}: ${name} is read by the service but not set`);
      for (const name of Object.keys(env)) if (!known.has(name)) problems.push(`${service}: ${name} is set but no service reads it`);
    }
    assert.deepEqual(problems, []);
  });

  it('connects every Mailwarden service to NATS as its own user, with its own password', () => {
    const services = [...mailwardenServices().map((s) => ({ service: s.service, env: s.def.environment ?? {} })), { service: 'mailwarden-init', env: compose.services['mailwarden-init']?.environment ?? {} }];
    for (const { service, env } of services) {
      const variable = NATS_PASSWORD_VARS[service];
      assert.ok(variable, `${service} has a NATS user in deploy/nats/auth.conf`);
      assert.equal(env.NATS_USER, service, `${service}: NATS_USER`);
      assert.equal(env.NATS_PASSWORD, `\${${variable}:?set ${variable} in .env}`, `${service}: NATS_PASSWORD`);
      assert.equal(compose.services.nats!.environment?.[variable], `\${${variable}:?set ${variable} in .env}`, `nats gets ${variable}`);
    }
    assert.deepEqual(compose.services['mailwarden-init']!.command, ['libs/bus/dist/src/init-cli.js']);
    for (const { service, def } of mailwardenServices()) {
      const deps = def.depends_on as Record<string, { condition: string }>;
      assert.equal(deps['mailwarden-init']?.condition, 'service_completed_successfully', `${service} starts after mailwarden-init`);
    }
  });

  it('gives a variable the same value in every service that sets it', () => {
    const values = new Map<string, Map<string, string>>();
    for (const [service, def] of Object.entries(compose.services)) {
      for (const [name, value] of Object.entries(def.environment ?? {})) {
        if (PER_SERVICE.has(name)) continue;
        if (!values.has(name)) values.set(name, new Map());
        values.get(name)!.set(service, String(value));
      }
    }
    const differing = [...values].filter(([, byService]) => new Set(byService.values()).size > 1).map(([name, byService]) => `${name}: ${JSON.stringify(Object.fromEntries(byService))}`);
    assert.deepEqual(differing, []);
    const defaults = new Map<string, Set<string>>();
    for (const i of interpolations) {
      if (!defaults.has(i.name)) defaults.set(i.name, new Set());
      defaults.get(i.name)!.add(`${i.op}${i.op === ':?' ? '' : i.arg}`);
    }
    const inconsistent = [...defaults].filter(([, forms]) => forms.size > 1).map(([name, forms]) => `${name}: ${[...forms].join(' vs ')}`);
    assert.deepEqual(inconsistent, [], 'one variable, one default');
  });

  it('shows in .env.example the value docker-compose.yml or the service really uses', () => {
    const settingDefault = new Map<string, string>(SETTINGS.map((s) => [s.env, s.default]));
    const fixed = new Map<string, string>();
    for (const { def } of mailwardenServices()) {
      for (const [name, value] of Object.entries(def.environment ?? {})) if (!String(value).includes('${') && !PER_SERVICE.has(name)) fixed.set(name, String(value));
    }
    const problems: string[] = [];
    for (const [name, { value, commented }] of example) {
      const i = interpolations.find((x) => x.name === name);
      let expected: string | undefined;
      if (i?.op === ':?') {
        expected = '';
        if (commented) problems.push(`${name} is required: list it uncommented`);
      } else if (i?.op === ':-' && i.arg !== '') expected = i.arg;
      else if (i) expected = settingDefault.get(name);
      else expected = fixed.get(name);
      if (expected !== undefined && value !== expected) problems.push(`${name}: .env.example shows "${value}", the deployment uses "${expected}"`);
    }
    assert.deepEqual(problems, []);
  });

  it('passes a variable empty only to code that treats empty as "default"', () => {
    // `${X:-}` hands the service an empty string. readSettings() turns that into the default;
    // `process.env.X ?? fallback` keeps it (an empty LOG_LEVEL crashes pino).
    const emptyByDefault = new Set(interpolations.filter((i) => i.op === ':-' && i.arg === '').map((i) => i.name));
    const bad = [...reads.values()]
      .flat()
      .filter((r) => r.nullish && emptyByDefault.has(r.name))
      .map((r) => `${r.name} (${r.file})`);
    assert.deepEqual(bad, [], 'give these a non-empty default in docker-compose.yml');
  });

  it('treats compose-only variables as such', () => {
    for (const name of example.keys()) if (isComposeOnly(name)) assert.ok(!allRead.has(name), `${name} looks compose-only but a service reads it`);
  });
});

// ================================================================== image
describe('deploy/Dockerfile', () => {
  const dockerfile = read('deploy/Dockerfile');
  /** Instructions with continuation lines joined, per stage. */
  const stages = dockerfile
    .replace(/\\\n/g, ' ')
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l && !l.startsWith('#'))
    .reduce<Array<{ from: string; lines: string[] }>>((acc, line) => {
      if (/^FROM\s/i.test(line)) acc.push({ from: line, lines: [] });
      else acc.at(-1)?.lines.push(line);
      return acc;
    }, []);

  it('builds with the same commands as CI: npm ci, then tsc -b', () => {
    const bootstrap = read('scripts/bootstrap.mjs');
    assert.match(bootstrap, /run\('npm', \['ci'/, 'CI (scripts/bootstrap.mjs) installs with npm ci');
    assert.match(bootstrap, /\[tsc, '-b'\]/, 'CI (scripts/bootstrap.mjs) builds with tsc -b');
    const build = stages[0]!;
    const runs = build.lines.filter((l) => /^RUN\s/i.test(l)).join('\n');
    const ci = runs.search(/\bnpm ci\b/);
    const tsc = runs.search(/\b(npx )?tsc -b\b/);
    assert.ok(ci >= 0, 'the build stage runs npm ci');
    assert.ok(tsc > ci, 'the build stage runs tsc -b after npm ci');
    assert.match(runs, /npm prune --omit=dev|npm ci --omit=dev/, 'dev dependencies are dropped');
    assert.ok(!/npm install\b/.test(runs), 'npm install would not honour the lock file');
  });

  it('runs as a non-root user from node:20-bookworm-slim, with node as entrypoint and a health check', () => {
    assert.match(dockerfile, /^ARG NODE_IMAGE=node:20-bookworm-slim$/m);
    assert.equal(stages.length, 2, 'one build stage, one runtime stage');
    const runtime = stages[1]!.lines;
    const user = runtime.filter((l) => /^USER\s/i.test(l)).at(-1);
    assert.ok(user && !/^USER\s+(root|0)(:|$)/i.test(user), `runtime user: ${user}`);
    assert.ok(runtime.includes('ENTRYPOINT ["node"]'));
    assert.ok(runtime.some((l) => /^HEALTHCHECK .*\/app\/deploy\/healthcheck\.mjs/.test(l)));
    assert.ok(runtime.some((l) => /^COPY --from=build \/out \/app$/.test(l)), 'only the assembled run-time tree is copied');
    assert.ok(existsSync(join(root, 'deploy', 'assemble-runtime.sh')));
  });

  it('keeps node_modules, build output, local state and secrets out of the build context', () => {
    const ignore = read('.dockerignore')
      .split('\n')
      .map((l) => l.trim());
    for (const entry of ['**/node_modules', '**/dist', '.local', 'test-artifacts', 'bench/results', '.git', '.env', '**/*.tsbuildinfo']) assert.ok(ignore.includes(entry), `.dockerignore: ${entry}`);
  });
});

// ================================================================== configuration files
describe('deploy/ configuration', () => {
  it('deploy/nats/nats.conf is valid for nats-server, with the users of auth.conf and their passwords', { skip: has('nats-server') ? false : 'nats-server is not installed' }, () => {
    const passwords = Object.fromEntries(Object.values(NATS_PASSWORD_VARS).map((v) => [v, `p${v.toLowerCase()}`]));
    const r = spawnSync('nats-server', ['-c', join(root, 'deploy/nats/nats.conf'), '-t'], { encoding: 'utf8', timeout: 10_000, env: { PATH: process.env.PATH ?? '', ...passwords } });
    assert.equal(r.status, 0, r.stderr + r.stdout);
    assert.match(read('deploy/nats/nats.conf'), /jetstream\s*\{[^}]*store_dir:\s*"\/data"/s);
    assert.match(read('deploy/nats/nats.conf'), /^include "auth\.conf"$/m);
    // Without the passwords the server does not start (no user with an empty password).
    const bare = spawnSync('nats-server', ['-c', join(root, 'deploy/nats/nats.conf'), '-t'], { encoding: 'utf8', timeout: 10_000, env: { PATH: process.env.PATH ?? '' } });
    assert.notEqual(bare.status, 0);
    const auth = read('deploy/nats/auth.conf');
    const users = [...auth.matchAll(/^\s*user: ([a-z0-9-]+)\n\s*password: \$([A-Z0-9_]+)$/gm)].map((m) => [m[1], m[2]]);
    assert.deepEqual(Object.fromEntries(users), NATS_PASSWORD_VARS, 'auth.conf: one user per service, passwords from NATS_<SERVICE>_PASSWORD');
    for (const [user] of users) assert.ok(auth.includes(`"_INBOX_${user}.>"`), `${user} subscribes to its own inbox only`);
    assert.ok(!/"_INBOX\.>"|"mw\.>"|"\$KV\.>"|no_auth_user/.test(auth), 'no shared inbox, no wildcard over the bus, no anonymous user');
  });

  it('deploy/clamav/clamd.conf parses, keeps the alerts on and the socket the image waits for', { skip: has('clamconf') ? false : 'clamconf is not installed (apt clamav)' }, () => {
    const dir = mkdtempSync(join(tmpdir(), 'mw-clamconf-'));
    try {
      writeFileSync(join(dir, 'clamd.conf'), read('deploy/clamav/clamd.conf'));
      const r = spawnSync('clamconf', ['-n', '-c', dir], { encoding: 'utf8', timeout: 10_000 });
      assert.ok(!/ERROR/.test(r.stderr + r.stdout), r.stderr);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
    const conf = read('deploy/clamav/clamd.conf');
    for (const line of ['AlertEncrypted yes', 'AlertEncryptedArchive yes', 'AlertEncryptedDoc yes', 'AlertExceedsMax yes', 'AlertBrokenExecutables yes', 'TCPSocket 3310', 'LocalSocket /tmp/clamd.sock', 'HeuristicScanPrecedence no']) {
      assert.match(conf, new RegExp(`^${line}$`, 'm'), line);
    }
    assert.ok(!/^LogFile /m.test(conf), 'clamd logs to stdout in the container');
  });

  it('production clamd.conf scans, alerts and limits like the template used by local runs and tests', () => {
    const options = (text: string) =>
      new Map(
        text
          .split('\n')
          .map((l) => l.trim())
          .filter((l) => l && !l.startsWith('#'))
          .map((l) => l.split(/\s+/, 2) as [string, string])
          .filter(([k]) => /^(Scan|Alert|Heuristic)|^(MaxFileSize|MaxScanSize|StreamMaxLength|MaxRecursion|MaxFiles|MaxScanTime)$/.test(k)),
      );
    const template = options(read('deploy/clamav/clamd.conf.template'));
    const production = options(read('deploy/clamav/clamd.conf'));
    assert.ok(template.size >= 15);
    assert.deepEqual(Object.fromEntries(production), Object.fromEntries(template));
  });

  it('deploy/minio/init.sh is valid sh', () => {
    const r = spawnSync('sh', ['-n', join(root, 'deploy/minio/init.sh')], { encoding: 'utf8' });
    assert.equal(r.status, 0, r.stderr);
  });

  it('the Kubernetes example parses, is listed in its kustomization, and autoscales the scanners', () => {
    const dir = join(root, 'deploy', 'kubernetes');
    const files = readdirSync(dir).filter((f) => /\.ya?ml$/.test(f));
    const kinds: string[] = [];
    for (const f of files) {
      for (const doc of parseAllDocuments(readFileSync(join(dir, f), 'utf8'))) {
        assert.deepEqual(doc.errors, [], `${f}: ${doc.errors.join('; ')}`);
        const obj = doc.toJS() as { apiVersion?: string; kind?: string; metadata?: { name?: string } } | null;
        if (!obj) continue;
        assert.ok(obj.apiVersion && obj.kind, `${f}: apiVersion and kind`);
        if (obj.kind !== 'Kustomization') assert.ok(obj.metadata?.name, `${f}: metadata.name`);
        kinds.push(`${obj.kind}/${obj.metadata?.name ?? ''}`);
      }
    }
    const kustomization = parse(readFileSync(join(dir, 'kustomization.yaml'), 'utf8')) as { resources: string[] };
    const listed = new Set(kustomization.resources);
    for (const f of files) if (f !== 'kustomization.yaml') assert.ok(listed.has(f), `kustomization.yaml lists ${f}`);
    for (const r of listed) assert.ok(files.includes(r), `kustomization.yaml lists missing ${r}`);
    for (const k of ['StatefulSet/nats', 'StatefulSet/minio', 'Deployment/clamav', 'Deployment/scanner', 'HorizontalPodAutoscaler/scanner', 'Deployment/smtp-gateway', 'Deployment/pop3-gateway', 'Deployment/config', 'Deployment/reassembler']) {
      assert.ok(kinds.includes(k), `${k} in deploy/kubernetes`);
    }
  });

  it('the Kubernetes ConfigMaps carry the same clamd.conf and MinIO init script as docker-compose', () => {
    const configMap = (file: string, name: string): Record<string, string> => {
      const docs = parseAllDocuments(read(`deploy/kubernetes/${file}`)).map((d) => d.toJS() as { kind: string; metadata: { name: string }; data: Record<string, string> });
      const cm = docs.find((d) => d.kind === 'ConfigMap' && d.metadata.name === name);
      assert.ok(cm, `ConfigMap ${name} in ${file}`);
      return cm.data;
    };
    assert.equal(configMap('clamav.yaml', 'clamd-config')['clamd.conf'], read('deploy/clamav/clamd.conf'), 'regenerate clamav.yaml from deploy/clamav/clamd.conf');
    assert.equal(configMap('minio.yaml', 'minio-init')['init.sh'], read('deploy/minio/init.sh'), 'regenerate minio.yaml from deploy/minio/init.sh');
    const nats = configMap('nats.yaml', 'nats-config');
    assert.equal(nats['auth.conf'], read('deploy/nats/auth.conf'), 'regenerate nats.yaml from deploy/nats/auth.conf');
    assert.match(nats['nats.conf']!, /^include "auth\.conf"$/m);
  });

  it('the Kubernetes Deployments and the init Job connect to NATS as their own user, passwords from the Secret nats-users', () => {
    type Container = { args: string[]; env?: Array<{ name: string; value?: string; valueFrom?: { secretKeyRef?: { name: string; key: string } } }> };
    const docs = [...parseAllDocuments(read('deploy/kubernetes/mailwarden.yaml')), ...parseAllDocuments(read('deploy/kubernetes/nats.yaml'))].map(
      (d) => d.toJS() as { kind: string; metadata: { name: string }; spec: { template: { spec: { containers: Container[] } } } },
    );
    const secret = parseAllDocuments(read('deploy/kubernetes/secret.yaml'))
      .map((d) => d.toJS() as { kind: string; metadata: { name: string }; stringData: Record<string, string> })
      .find((d) => d.kind === 'Secret' && d.metadata.name === 'nats-users');
    assert.ok(secret, 'Secret nats-users in secret.yaml');
    assert.deepEqual(Object.keys(secret.stringData).sort(), Object.values(NATS_PASSWORD_VARS).sort());
    for (const [user, variable] of Object.entries(NATS_PASSWORD_VARS)) {
      const workload = docs.find((d) => (d.kind === 'Deployment' || d.kind === 'Job') && d.metadata.name === user);
      assert.ok(workload, `a Deployment or Job ${user}`);
      const env = workload.spec.template.spec.containers[0]!.env ?? [];
      assert.equal(env.find((e) => e.name === 'NATS_USER')?.value, user, `${user}: NATS_USER`);
      assert.deepEqual(env.find((e) => e.name === 'NATS_PASSWORD')?.valueFrom?.secretKeyRef, { name: 'nats-users', key: variable }, `${user}: NATS_PASSWORD`);
    }
  });

  it('the Kubernetes Deployments run the services of docker-compose.yml with the same command', () => {
    const docs = parseAllDocuments(read('deploy/kubernetes/mailwarden.yaml')).map(
      (d) => d.toJS() as { kind: string; metadata: { name: string }; spec: { template: { spec: { containers: Array<{ args: string[] }> } } } },
    );
    for (const { service, def } of mailwardenServices()) {
      const dep = docs.find((d) => d.kind === 'Deployment' && d.metadata.name === service);
      assert.ok(dep, `Deployment ${service}`);
      assert.deepEqual(dep.spec.template.spec.containers[0]!.args, def.command, `${service} command`);
    }
  });

  it('the Prometheus configuration and alert rules parse and use only metrics that exist', () => {
    const prom = parse(read('deploy/monitoring/prometheus.yml')) as { scrape_configs: Array<{ job_name: string; dns_sd_configs?: Array<{ names: string[]; port: number }> }> };
    const job = prom.scrape_configs.find((j) => j.job_name === 'mailwarden');
    assert.ok(job?.dns_sd_configs?.[0], 'the mailwarden job discovers containers by DNS');
    assert.deepEqual([...job.dns_sd_configs[0].names].sort(), mailwardenServices().map((s) => s.service).sort(), 'every Mailwarden service is scraped');
    assert.equal(job.dns_sd_configs[0].port, 9090);
    const rulesText = read('deploy/monitoring/alerts.yml');
    const rules = parse(rulesText) as { groups: Array<{ rules: Array<{ alert: string; expr: string }> }> };
    assert.ok(rules.groups[0]!.rules.length >= 3);
    const registry = new Registry();
    createMetrics(registry);
    const ours = new Set(registry.getMetricsAsArray().map((m) => m.name));
    const used = [...rulesText.matchAll(/\b(mailwarden_[a-z0-9_]+?)(?:_bucket|_sum|_count)?\b/g)].map((m) => m[1]!);
    assert.deepEqual(
      used.filter((n) => !ours.has(n)),
      [],
    );
  });

  it('the Grafana dashboard parses and queries only metrics that exist', () => {
    const text = read('deploy/grafana/mailwarden-dashboard.json');
    const dashboard = JSON.parse(text) as { panels: unknown[]; title: string };
    assert.ok(dashboard.panels.length >= 6);
    const registry = new Registry();
    createMetrics(registry);
    const ours = new Set(registry.getMetricsAsArray().map((m) => m.name));
    const used = new Set([...text.matchAll(/\b(mailwarden_[a-z0-9_]+?)(?:_bucket|_sum|_count)?\b/g)].map((m) => m[1]!));
    const unknown = [...used].filter((n) => !ours.has(n));
    assert.deepEqual(unknown, []);
    for (const name of ours) assert.ok(used.has(name), `the dashboard shows ${name}`);
  });
});

// ================================================================== the image's health probe
describe('deploy/healthcheck.mjs', () => {
  let ops: OpsServer;
  before(async () => {
    ops = await startOpsServer({ listen: '127.0.0.1:0', service: 'probe-test', registry: new Registry() });
  });
  after(() => ops.close());
  /** Runs the probe as Docker does; asynchronously, since the ops server lives in this process. */
  const probe = (listen: string, path?: string) =>
    new Promise<{ status: number; stdout: string }>((resolve) => {
      execFile(
        process.execPath,
        [join(root, 'deploy/healthcheck.mjs'), ...(path ? [path] : [])],
        { encoding: 'utf8', env: { PATH: process.env.PATH ?? '', OPS_LISTEN: listen }, timeout: 10_000 },
        (err, stdout) => resolve({ status: err ? Number(err.code ?? 1) : 0, stdout }),
      );
    });

  it('exits 0 while /healthz answers 200 (wildcard addresses probed on loopback)', async () => {
    assert.equal((await probe(`127.0.0.1:${ops.port}`)).status, 0);
    assert.equal((await probe(`0.0.0.0:${ops.port}`, '/readyz')).status, 0);
  });

  it('exits 1 when nothing listens, and once the service is shutting down', async () => {
    const closed = await startOpsServer({ listen: '127.0.0.1:0', service: 'gone', registry: new Registry() });
    const port = closed.port!;
    await closed.close();
    assert.equal((await probe(`127.0.0.1:${port}`)).status, 1);
    ops.setShuttingDown();
    const r = await probe(`127.0.0.1:${ops.port}`);
    assert.equal(r.status, 1);
    assert.match(r.stdout, /503/);
  });
});
