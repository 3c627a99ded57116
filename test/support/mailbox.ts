import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { waitFor } from '@mailwarden/testkit';

/** Messages delivered to `user` in the dev mailbox's maildir, oldest first. */
export async function delivered(mailRoot: string, user: string): Promise<Buffer[]> {
  const dir = join(mailRoot, user.toLowerCase(), 'new');
  const names = await readdir(dir).catch(() => [] as string[]);
  names.sort(byDeliveryTime);
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

/**
 * Maildir names are `<seconds>.M<usec>P<pid>Q<n>.<host>`; the dev mailbox's usec is not wall-clock
 * time (and not zero-padded), so within a second its delivery counter Q gives the order.
 */
function byDeliveryTime(a: string, b: string): number {
  const key = (n: string): [number, number] => {
    const m = /^(\d+)\.M\d+P\d+Q(\d+)/.exec(n);
    return m ? [Number(m[1]), Number(m[2])] : [Infinity, 0];
  };
  const [sa, qa] = key(a);
  const [sb, qb] = key(b);
  return sa - sb || qa - qb || a.localeCompare(b);
}
