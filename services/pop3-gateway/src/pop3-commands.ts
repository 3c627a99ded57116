import { metrics } from '@mailwarden/observability';
import { Readable } from 'node:stream';
import type { Pop3Session } from './pop3-session.js';
import { Pop3ReplyError } from './pop3-reply.js';
import { filterCapabilities } from './capabilities.js';
import { topLines } from './top-lines.js';
import { saslUser } from './sasl-user.js';
import { restateListLine, restateListReply, restateStat } from './delivered-sizes.js';

/** Session states, named as in RFC 1939 3. */
export type Pop3State = 'AUTHORIZATION' | 'TRANSACTION' | 'UPDATE';

export type Verb = 'CAPA' | 'STLS' | 'USER' | 'PASS' | 'APOP' | 'AUTH' | 'STAT' | 'LIST' | 'UIDL' | 'RETR' | 'TOP' | 'DELE' | 'NOOP' | 'RSET' | 'QUIT';

export interface Pop3Command {
  /** States in which the command is valid; anything else gets `-ERR` without reaching upstream. */
  states: readonly Pop3State[];
  /** `arg` is everything after the first space, as sent (passwords may contain spaces). */
  handler(session: Pop3Session, arg: string): Promise<void>;
}

const AUTHORIZATION = ['AUTHORIZATION'] as const;
const TRANSACTION = ['TRANSACTION'] as const;
const EITHER = ['AUTHORIZATION', 'TRANSACTION'] as const;

/** A message number (RFC 1939 5: 1-based); undefined when `s` is not one. */
export function messageNumber(s: string | undefined): number | undefined {
  return s !== undefined && /^[1-9]\d{0,8}$/.test(s) ? Number(s) : undefined;
}

const args = (arg: string): string[] => arg.trim().split(/ +/).filter(Boolean);
const withArg = (verb: string, arg: string): string => (arg.trim() ? `${verb} ${args(arg).join(' ')}` : verb);

/**
 * Every command the proxy accepts, as data: which states allow it and what it does. Verbs not
 * listed get `-ERR Unknown command` (UTF8, LANG, XTND, …: nothing unhandled reaches upstream).
 */
export const COMMANDS: Record<Verb, Pop3Command> = {
  /** RFC 2449 5: upstream's list, filtered to what the proxy handles; STLS per the TLS policy. */
  CAPA: {
    states: EITHER,
    async handler(s) {
      const { reply, lines } = await s.upstream.capabilities();
      if (!lines) return s.relay(reply);
      await s.sendLines(reply.line, filterCapabilities(lines, { stls: s.offersStls() }));
    },
  },

  /**
   * RFC 2595 4: terminated by the gateway (terminate), relayed to upstream and spliced
   * (passthrough), or refused (strip, or the session is already encrypted).
   */
  STLS: {
    states: AUTHORIZATION,
    handler: (s) => s.startTls(),
  },

  /** RFC 1939 7 (USER/PASS): relayed; the user name is remembered for the scan envelope. */
  USER: {
    states: AUTHORIZATION,
    async handler(s, arg) {
      const reply = await s.relayCommand(`USER ${arg}`);
      if (reply.ok) s.user = arg.trim();
    },
  },

  PASS: {
    states: AUTHORIZATION,
    async handler(s, arg) {
      const reply = await s.relayCommand(`PASS ${arg}`);
      if (reply.ok) s.enterTransaction();
    },
  },

  /** RFC 1939 7: works because upstream's greeting (and its timestamp) reached the client unchanged. */
  APOP: {
    states: AUTHORIZATION,
    async handler(s, arg) {
      const reply = await s.relayCommand(withArg('APOP', arg));
      if (reply.ok) {
        s.user = args(arg)[0] ?? '';
        s.enterTransaction();
      }
    },
  },

  /** RFC 5034: the SASL exchange is relayed line by line (continuations out, responses in). Bare AUTH lists mechanisms. */
  AUTH: {
    states: AUTHORIZATION,
    async handler(s, arg) {
      if (!arg.trim()) return s.relayListing('AUTH');
      const [mechanism = '', initial] = args(arg);
      const responses: string[] = initial !== undefined ? [initial] : [];
      let reply = await s.upstream.command(withArg('AUTH', arg));
      while (reply.continuation) {
        await s.relay(reply);
        const response = await s.readClientLine();
        responses.push(response);
        reply = await s.upstream.command(response);
      }
      await s.relay(reply);
      if (reply.ok) {
        s.user = saslUser(mechanism, responses);
        s.enterTransaction();
      }
    },
  },

  /**
   * RFC 1939 5: upstream's count, and the octets of the messages as RETR will send them: the
   * sizes not known yet are learnt first (size-lookahead.ts), then upstream's total is corrected
   * (delivered-sizes.ts).
   */
  STAT: {
    states: TRANSACTION,
    async handler(s) {
      const reply = await s.upstream.command('STAT');
      if (reply.ok && s.looksAhead()) await s.sizes.learn(await s.sizes.listing(), 'STAT');
      await s.relay(restateStat(reply, s.messages.sizeDifference()));
    },
  },

  /**
   * LIST and UIDL without an argument are multi-line (RFC 1939 5, 7). LIST gives each message's
   * size as RETR will send it: learnt first when the look-ahead is on, else upstream's until the
   * message was retrieved.
   */
  LIST: {
    states: TRANSACTION,
    async handler(s, arg) {
      const delivered = (n: number) => s.messages.deliveredSize(n);
      if (!s.looksAhead()) {
        if (arg.trim()) return void (await s.relayCommand(withArg('LIST', arg), (r) => restateListReply(r, delivered)));
        return s.relayListing('LIST', (line) => restateListLine(line, delivered));
      }
      if (arg.trim()) {
        const reply = await s.upstream.command(withArg('LIST', arg));
        const listed = reply.ok ? s.sizes.noteListLine(reply.text) : undefined;
        if (listed) await s.sizes.learn([listed], 'LIST');
        return s.relay(restateListReply(reply, delivered));
      }
      const { reply, lines } = await s.upstream.listing('LIST');
      if (!lines) return s.relay(reply);
      const all: string[] = [];
      for await (const line of lines) all.push(line);
      await s.sizes.learn(s.sizes.noteListing(all), 'LIST');
      await s.sendLines(reply.line, all.map((line) => restateListLine(line, delivered)));
    },
  },

  /** The listing's UIDs are noted on the way (the size memory is keyed by them). */
  UIDL: {
    states: TRANSACTION,
    async handler(s, arg) {
      if (arg.trim()) return void (await s.relayCommand(withArg('UIDL', arg)));
      await s.relayListing('UIDL', (line) => {
        s.sizes.noteUidLine(line);
        return line;
      });
    },
  },

  /** RFC 1939 5: the scanned (possibly rebuilt) message with its own size; relayed as-is when POP3 scanning is off. */
  RETR: {
    states: TRANSACTION,
    async handler(s, arg) {
      const n = messageNumber(args(arg)[0]);
      if (n === undefined || args(arg).length !== 1) throw new Pop3ReplyError('-ERR Invalid message number');
      if (!s.scanningEnabled()) return s.relayBody(`RETR ${n}`);
      try {
        const message = await s.scannedMessage(n);
        await s.retrieveUpstream(n);
        const body = await s.openStored(message);
        await s.sendBody(`+OK ${message.size} octets`, body);
        metrics.messages.inc({ protocol: 'pop3', direction: 'inbound', outcome: 'delivered' });
      } catch (err) {
        if (err instanceof Pop3ReplyError && err.line.startsWith('-ERR [SYS/TEMP]')) metrics.messages.inc({ protocol: 'pop3', direction: 'inbound', outcome: 'tempfail' });
        throw err;
      }
    },
  },

  /**
   * RFC 1939 7: cut from the scanned message (retrieved and scanned first if need be), never from
   * upstream's copy, so a removed attachment's content cannot leak through the first lines.
   */
  TOP: {
    states: TRANSACTION,
    async handler(s, arg) {
      const [msg, lines, ...extra] = args(arg);
      const n = messageNumber(msg);
      const count = lines !== undefined && /^\d{1,9}$/.test(lines) ? Number(lines) : undefined;
      if (n === undefined || count === undefined || extra.length) throw new Pop3ReplyError('-ERR Usage: TOP <message number> <lines>');
      if (!s.scanningEnabled()) return s.relayBody(`TOP ${n} ${count}`);
      const message = await s.scannedMessage(n);
      const body = await s.openStored(message);
      await s.sendBody('+OK top of message follows', Readable.from(topLines(body, count), { objectMode: false }));
    },
  },

  DELE: {
    states: TRANSACTION,
    async handler(s, arg) {
      const reply = await s.relayCommand(withArg('DELE', arg));
      const n = messageNumber(args(arg)[0]);
      if (reply.ok && n !== undefined) s.messages.markDeleted(n);
    },
  },

  NOOP: { states: TRANSACTION, handler: async (s) => void (await s.relayCommand('NOOP')) },

  RSET: {
    states: TRANSACTION,
    async handler(s) {
      const reply = await s.relayCommand('RSET');
      if (reply.ok) {
        s.messages.unmarkAll();
        s.sizes.reset();
      }
    },
  },

  /** RFC 1939 6: QUIT in TRANSACTION makes upstream enter UPDATE and remove the deleted messages. */
  QUIT: {
    states: EITHER,
    async handler(s) {
      if (s.state === 'TRANSACTION') s.state = 'UPDATE';
      s.end();
      await s.relay(await s.upstream.quit());
    },
  },
};

export function lookupCommand(verb: string): Pop3Command | undefined {
  return Object.hasOwn(COMMANDS, verb) ? COMMANDS[verb as Verb] : undefined;
}
