import { createWriteStream } from 'node:fs';
import { chown, link, mkdir, rename, unlink } from 'node:fs/promises';
import { hostname } from 'node:os';
import { join } from 'node:path';
import type { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';

/** Owner of delivered mail. Dovecot refuses root-owned mail files, so root delivers as nobody. */
export interface MailOwner {
  uid: number;
  gid: number;
}

/** uid/gid 65534 (nobody/nogroup) when running as root, else null (files stay the caller's). */
export function defaultMailOwner(): MailOwner | null {
  return process.getuid?.() === 0 ? { uid: 65534, gid: 65534 } : null;
}

export interface Delivery {
  /** Unique maildir base name, the same in every recipient's `new/`. */
  id: string;
  /** Bytes written (the message exactly as received). */
  size: number;
  /** Absolute paths of the delivered files, one per mailbox. */
  files: string[];
}

export class MaildirError extends Error {
  override name = 'MaildirError';
}

/** A mailbox name is a lower-case local part usable as a single path segment. */
const MAILBOX_NAME = /^[a-z0-9_+=-][a-z0-9._+=-]{0,127}$/;

export function isValidMailboxName(name: string): boolean {
  return MAILBOX_NAME.test(name) && name !== '.' && name !== '..';
}

let sequence = 0;
const host = hostname().replace(/\//g, '\\057').replace(/:/g, '\\072');

/** Maildir unique name (https://cr.yp.to/proto/maildir.html): time.M<usec>P<pid>Q<n>.host */
function uniqueName(): string {
  const now = process.hrtime.bigint();
  const ms = Date.now();
  const usec = Number((now / 1000n) % 1_000_000n);
  sequence += 1;
  return `${Math.floor(ms / 1000)}.M${usec}P${process.pid}Q${sequence}.${host}`;
}

/**
 * A tree of maildirs, one per user: `<root>/<user>/{tmp,new,cur}`, the layout Dovecot reads
 * with `mail_location = maildir:<root>/%n`.
 */
export class MaildirStore {
  constructor(
    readonly root: string,
    readonly owner: MailOwner | null = defaultMailOwner(),
  ) {}

  /** Creates `<root>/<user>/{tmp,new,cur}` (owned by the mail owner); returns the user's dir. */
  async ensureMailbox(user: string): Promise<string> {
    if (!isValidMailboxName(user)) throw new MaildirError(`invalid mailbox name "${user}"`);
    // A root we create belongs to the mail owner too (Dovecot creates new users' maildirs there).
    if ((await mkdir(this.root, { recursive: true, mode: 0o755 })) !== undefined && this.owner) {
      await chown(this.root, this.owner.uid, this.owner.gid);
    }
    const dir = join(this.root, user);
    for (const d of [dir, join(dir, 'tmp'), join(dir, 'new'), join(dir, 'cur')]) {
      await mkdir(d, { recursive: true, mode: 0o700 });
      if (this.owner) await chown(d, this.owner.uid, this.owner.gid);
    }
    return dir;
  }

  /**
   * Streams one message into every user's mailbox: written once to the first user's `tmp/`
   * (flushed to disk), hard-linked into the other users' `new/`, then renamed into `new/`.
   * Never buffers the message.
   */
  async deliver(message: Readable, users: readonly string[]): Promise<Delivery> {
    const unique = [...new Set(users)];
    if (!unique.length) throw new MaildirError('no recipients');
    const dirs: string[] = [];
    for (const u of unique) dirs.push(await this.ensureMailbox(u));
    const id = uniqueName();
    const tmp = join(dirs[0]!, 'tmp', id);
    const out = createWriteStream(tmp, { flags: 'wx', mode: 0o600, flush: true });
    const files: string[] = [];
    try {
      await pipeline(message, out);
      if (this.owner) await chown(tmp, this.owner.uid, this.owner.gid);
      for (const d of dirs.slice(1)) {
        const f = join(d, 'new', id);
        await link(tmp, f);
        files.push(f);
      }
      const first = join(dirs[0]!, 'new', id);
      await rename(tmp, first);
      files.unshift(first);
      return { id, size: out.bytesWritten, files };
    } catch (err) {
      // A stream that fails early can beat the file's open(): wait for the fd to be closed,
      // or the file would appear after the unlink.
      if (!out.closed) await new Promise<void>((r) => out.once('close', () => r()));
      await Promise.all([tmp, ...files].map((f) => unlink(f).catch(() => undefined)));
      throw err;
    }
  }
}
