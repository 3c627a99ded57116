#!/usr/bin/env node
/**
 * `npm start` = `node libs/local-stack/dist/src/cli.js up`: the whole gateway on this machine.
 *
 *   up [--deps-only]   start NATS, S3, clamd, the dev mailbox (SMTP 2526) and Dovecot (POP3 1100),
 *                      then the services; Ctrl-C stops everything in reverse order.
 *
 * State lives in `<repo>/.local/` (MAILWARDEN_STATE_DIR overrides). Every Mailwarden setting can
 * be overridden from the environment (see `npm run print-config`); a dependency whose variable
 * is set explicitly (S3_ENDPOINT, CLAMD_ADDRESSES, SMTP_UPSTREAM, POP3_UPSTREAM) is used as is,
 * and one already answering on its default address is reused instead of started.
 * Extra variables: DEV_MAILBOX_SMTP_LISTEN (127.0.0.1:2526), DEV_MAILBOX_POP3_LISTEN
 * (127.0.0.1:1100), DEV_MAILBOX_POP3S_LISTEN (127.0.0.1:1995).
 */
import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join, relative, resolve } from 'node:path';
import { startClamd } from '@mailwarden/clamd';
import { parseHostPort, readSettings } from '@mailwarden/config';
import { LocalStackError, formatHostPort, isListening, isLoopback, readGreeting } from './daemon.js';
import { DEFAULT_POP3_PASSWORD, startDovecot } from './dovecot.js';
import { NATS_ADMIN_USER, ensureNats, natsServiceEnv, runNatsInit } from './nats.js';
import { startS3 } from './s3.js';
import { CORE_SERVICES, OPTIONAL_SERVICES, REPO_ROOT, serviceIsBuilt } from './service.js';
import { superviseService, type SupervisedService } from './supervisor.js';

const EICAR = 'X5O!P%@AP[4\\PZX54(P^)7CC)7}$EICAR-STANDARD-ANTIVIRUS-TEST-FILE!$H+H*';

const say = (line: string): void => console.log(`[local-stack] ${line}`);

interface Stoppable {
  name: string;
  stop(): Promise<void>;
  stopRestarting?(): void;
}

function explicit(name: string): string | undefined {
  return process.env[name]?.trim() || undefined;
}

/** ADMIN_TOKEN from the environment, else the one kept in the state dir, else a new one (printed once). */
async function adminToken(stateDir: string): Promise<{ token: string; generated: boolean; file?: string }> {
  const fromEnv = explicit('ADMIN_TOKEN');
  if (fromEnv) return { token: fromEnv, generated: false };
  const file = join(stateDir, 'admin-token');
  if (existsSync(file)) return { token: (await readFile(file, 'utf8')).trim(), generated: false, file };
  const token = randomBytes(18).toString('base64url');
  await writeFile(file, token + '\n', { mode: 0o600 });
  return { token, generated: true, file };
}

async function up(depsOnly: boolean): Promise<void> {
  const stateDir = resolve(explicit('MAILWARDEN_STATE_DIR') ?? join(REPO_ROOT, '.local'));
  const rel = (p: string): string => (p.startsWith(REPO_ROOT) ? relative(process.cwd(), p) || '.' : p);
  await mkdir(join(stateDir, 'logs'), { recursive: true });
  const settings = readSettings(process.env);
  const stack: Stoppable[] = []; // in start order; stopped in reverse
  const notes: string[] = [];

  let shuttingDown = false;
  const shutdown = async (signal: string, exitCode = 0): Promise<void> => {
    if (shuttingDown) {
      say(`${signal} again: exiting now`);
      process.exit(1); // the exit hook SIGKILLs what is left
    }
    shuttingDown = true;
    say(`${signal}: stopping`);
    for (const c of stack) c.stopRestarting?.();
    for (const c of [...stack].reverse()) {
      try {
        await c.stop();
        say(`  stopped ${c.name}`);
      } catch (err) {
        say(`  ${c.name} did not stop cleanly: ${(err as Error).message}`);
      }
    }
    process.exit(exitCode);
  };
  process.on('SIGINT', () => void shutdown('SIGINT'));
  process.on('SIGTERM', () => void shutdown('SIGTERM'));

  try {
    // NATS: reuse one answering on NATS_URL, else start one there.
    const nats = await ensureNats(settings.NATS_URL, { stateDir, detached: true });
    stack.push({ name: 'nats-server', stop: nats.stop });
    notes.push(`NATS           ${nats.url} (${nats.reused ? 'already running, reused' : `started, pid ${nats.pid}`})`);

    // S3: an explicit remote S3_ENDPOINT is used as is; on loopback reuse or start s3rver.
    const s3url = new URL(settings.S3_ENDPOINT);
    const s3host = s3url.hostname.replace(/^\[(.*)\]$/, '$1');
    const s3port = Number(s3url.port || (s3url.protocol === 'https:' ? 443 : 80));
    let s3note: string;
    if (!isLoopback(s3host)) s3note = 'external';
    else if (await isListening(s3host, s3port)) s3note = 'already running, reused';
    else {
      const s3 = await startS3({
        stateDir,
        host: s3host === 'localhost' ? '127.0.0.1' : s3host,
        port: s3port,
        accessKey: settings.S3_ACCESS_KEY,
        secretKey: settings.S3_SECRET_KEY,
        buckets: [settings.S3_BUCKET],
        detached: true,
      });
      stack.push({ name: 's3-server', stop: s3.stop });
      s3note = `s3rver, pid ${s3.pid}, data in ${rel(s3.directory)}`;
    }
    notes.push(`S3             ${settings.S3_ENDPOINT} (${s3note}; key ${settings.S3_ACCESS_KEY}, bucket ${settings.S3_BUCKET})`);

    // clamd with the project's signatures, unless CLAMD_ADDRESSES is set.
    if (explicit('CLAMD_ADDRESSES')) {
      notes.push(`clamd          ${settings.CLAMD_ADDRESSES} (external)`);
    } else {
      const { host, port } = parseHostPort(settings.CLAMD_ADDRESSES.split(',')[0]!, 'CLAMD_ADDRESSES');
      if (await isListening(host, port)) {
        notes.push(`clamd          ${formatHostPort(host, port)} (already running, reused)`);
      } else {
        const clamd = await startClamd({ stateDir: join(stateDir, 'clamd'), host, port });
        stack.push({ name: 'clamd', stop: clamd.stop });
        notes.push(`clamd          ${clamd.address} (pid ${clamd.pid}, log ${rel(clamd.logFile)})`);
      }
    }

    const mailRoot = join(stateDir, 'mail');
    const serviceEnv: Record<string, string> = { ...settings, MAILWARDEN_STATE_DIR: stateDir };
    // Each service connects as its own NATS user (deploy/nats/auth.conf, passwords in
    // nats-users.json), unless NATS_USER is set explicitly: then every service uses that one.
    const ownNatsUsers = !explicit('NATS_USER') && !!nats.users;
    const natsEnvOf = (name: string): Record<string, string> => (ownNatsUsers ? natsServiceEnv(nats, name) : {});
    await runNatsInit(ownNatsUsers ? nats : { url: nats.url }, { stateDir, env: serviceEnv });
    notes.push(
      ownNatsUsers
        ? `NATS users     one per service (deploy/nats/auth.conf), passwords in ${rel(join(stateDir, 'nats-users.json'))}; streams made by mailwarden-init`
        : `NATS user      ${settings.NATS_USER || '(anonymous)'} for every service`,
    );
    const admin = await adminToken(stateDir);
    serviceEnv.ADMIN_TOKEN = admin.token;

    // Dovecot POP3 over the dev mailbox's maildirs, unless POP3_UPSTREAM is set.
    const pop3Listen = parseHostPort(explicit('DEV_MAILBOX_POP3_LISTEN') ?? '127.0.0.1:1100', 'DEV_MAILBOX_POP3_LISTEN');
    const pop3sListen = parseHostPort(explicit('DEV_MAILBOX_POP3S_LISTEN') ?? '127.0.0.1:1995', 'DEV_MAILBOX_POP3S_LISTEN');
    if (explicit('POP3_UPSTREAM')) {
      notes.push(`POP3 upstream  ${settings.POP3_UPSTREAM} (external)`);
    } else {
      serviceEnv.POP3_UPSTREAM = formatHostPort(pop3Listen.host, pop3Listen.port);
      if ((await readGreeting(pop3Listen.host, pop3Listen.port))?.startsWith('+OK')) {
        notes.push(`Dovecot POP3   ${serviceEnv.POP3_UPSTREAM} (already running, reused)`);
      } else {
        const dovecot = await startDovecot({
          stateDir,
          mailRoot,
          host: pop3Listen.host,
          port: pop3Listen.port,
          pop3sPort: pop3sListen.port,
          detached: true,
        });
        stack.push({ name: 'dovecot', stop: dovecot.stop });
        notes.push(
          `Dovecot POP3   ${dovecot.address}, pop3s ${dovecot.pop3sAddress} (any user, password "${DEFAULT_POP3_PASSWORD}"; log ${rel(dovecot.logFile)})`,
        );
      }
    }

    // The dev mailbox (SMTP → maildir), unless SMTP_UPSTREAM is set.
    const supervised: SupervisedService[] = [];
    const report = (line: string): void => say(line);
    if (explicit('SMTP_UPSTREAM')) {
      notes.push(`SMTP upstream  ${settings.SMTP_UPSTREAM} (external)`);
    } else {
      const listen = parseHostPort(explicit('DEV_MAILBOX_SMTP_LISTEN') ?? '127.0.0.1:2526', 'DEV_MAILBOX_SMTP_LISTEN');
      serviceEnv.SMTP_UPSTREAM = formatHostPort(listen.host, listen.port);
      if (await isListening(listen.host, listen.port)) {
        notes.push(`dev mailbox    SMTP ${serviceEnv.SMTP_UPSTREAM} (already running, reused)`);
      } else {
        const mailbox = superviseService(
          'dev-mailbox',
          { ...serviceEnv, DEV_MAILBOX_SMTP_LISTEN: serviceEnv.SMTP_UPSTREAM, DEV_MAILBOX_DIR: mailRoot },
          { stateDir, report, detached: true },
        );
        stack.push(mailbox);
        if (!(await mailbox.firstStart)) throw new LocalStackError(`dev-mailbox did not start; see ${rel(join(stateDir, 'logs', 'dev-mailbox.log'))}`);
        notes.push(`dev mailbox    SMTP ${serviceEnv.SMTP_UPSTREAM}, mail in ${rel(mailRoot)}/<user>/new/`);
      }
    }

    if (depsOnly) {
      console.log('\nDependencies are running. Environment for the services:\n');
      // The services' own NATS user is per service; for running them by hand, the init user may do everything.
      const depsEnv = { ...serviceEnv, ...natsEnvOf(NATS_ADMIN_USER) };
      for (const [k, v] of Object.entries(depsEnv)) if (k !== 'ADMIN_TOKEN' || !explicit(k)) console.log(`export ${k}='${v}'`);
      console.log('');
      for (const n of notes) console.log(`  ${n}`);
      console.log('\nCtrl-C stops everything.');
      return;
    }

    // The services: workers first, gateways last. Each is restarted with backoff if it dies.
    const names = [...CORE_SERVICES, ...OPTIONAL_SERVICES];
    const running: string[] = [];
    for (const name of names) {
      if (!serviceIsBuilt(name)) {
        if ((CORE_SERVICES as readonly string[]).includes(name)) say(`WARNING: services/${name} is not built (no dist/src/main.js): skipped`);
        continue;
      }
      const svc = superviseService(name, { ...serviceEnv, ...natsEnvOf(name) }, { stateDir, report, detached: true });
      stack.push(svc);
      supervised.push(svc);
      const first = await svc.firstStart;
      if (first) running.push(name);
      else say(`WARNING: ${name} did not start; it will be retried. Log: ${rel(join(stateDir, 'logs', `${name}.log`))}`);
    }

    const eicar = join(stateDir, 'eicar.com');
    if (!existsSync(eicar)) await writeFile(eicar, EICAR);
    const lines = [
      '',
      `Mailwarden is running. State in ${rel(stateDir)}/, logs in ${rel(join(stateDir, 'logs'))}/`,
      '',
      ...(running.includes('smtp-gateway') ? [`  SMTP gateway   ${settings.SMTP_LISTEN} → ${serviceEnv.SMTP_UPSTREAM}`] : []),
      ...(running.includes('pop3-gateway') ? [`  POP3 gateway   ${settings.POP3_LISTEN} → ${serviceEnv.POP3_UPSTREAM}`] : []),
      ...(running.includes('config')
        ? [
            `  admin UI/API   http://${settings.CONFIG_LISTEN}/`,
            admin.generated
              ? `  admin token    ${admin.token}   (generated now, shown once; kept in ${rel(admin.file!)})`
              : `  admin token    ${admin.file ? `in ${rel(admin.file)}` : 'ADMIN_TOKEN from the environment'}`,
          ]
        : []),
      ...(['scanner', 'reassembler'].filter((n) => running.includes(n)).length
        ? [`  workers        ${['scanner', 'reassembler'].filter((n) => running.includes(n)).join(', ')}`]
        : []),
      ...notes.map((n) => `  ${n}`),
      '',
      'Try it:',
      `  swaks --server ${settings.SMTP_LISTEN} --to user@example.test --attach @${rel(eicar)}`,
      `  ls ${rel(mailRoot)}/user/new/          # the delivered message, attachment replaced by a notice`,
      ...(running.includes('config')
        ? [`  curl -H "Authorization: Bearer ${admin.file ? `$(cat ${rel(admin.file)})` : '$ADMIN_TOKEN'}" http://${settings.CONFIG_LISTEN}/api/v1/policy`]
        : []),
      `  POP3: ${serviceEnv.POP3_UPSTREAM ?? settings.POP3_UPSTREAM}` +
        (running.includes('pop3-gateway') ? ` (or through the gateway: ${settings.POP3_LISTEN})` : '') +
        `, user "user", password "${DEFAULT_POP3_PASSWORD}"`,
      '',
      'Ctrl-C stops everything.',
    ];
    console.log(lines.join('\n'));
  } catch (err) {
    say(`ERROR: ${(err as Error).message}`);
    await shutdown('startup failure', 1);
  }
}

const [cmd = 'up', ...rest] = process.argv.slice(2);
if (cmd === 'up') {
  await up(rest.includes('--deps-only'));
} else {
  console.error('usage: cli.js up [--deps-only]');
  process.exit(2);
}
