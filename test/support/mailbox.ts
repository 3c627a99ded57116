import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { waitFor } from '@mailwarden/testkit';

/** Messages delivered to `user` in the dev mailbox's maildir, oldest first. */
export async function delivered(mailRoot: string, user: string): Promise<Buffer[]> {
  const dir = join(mailRoot, user.toLowerCase(), 'new');
  const names = await readdir(dir).catch(() => [] as string[]);
  names.sort();
  return Promise.all(names.map((n) => readFile(join(dir, n))));
}

export async function waitForDelivery(mailRoot: string, user: string, count = 1): Promise<Buffer[]> {
  return waitFor(async () => {
    const msgs = await delivered(mailRoot, user);
    return msgs.length >= count ? msgs : undefined;
  }, `${count} message(s) for ${user}`);
}

let n = 0;
/** A mailbox name no other test uses, so tests need no cleanup between them. */
export const uniqueUser = (tag: string): string => `${tag}${process.pid}x${++n}`;
