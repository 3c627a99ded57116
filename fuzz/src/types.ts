import type { MaildirStore } from '@mailwarden/dev-mailbox';

export type Category = 'smtp-message' | 'smtp-protocol' | 'pop3-message' | 'pop3-protocol';
export const CATEGORIES: readonly Category[] = ['smtp-message', 'smtp-protocol', 'pop3-message', 'pop3-protocol'];

/**
 * The last answer an input got: `250` (SMTP 2xx/3xx, POP3 `+OK`), `5xx` (POP3 `-ERR`), `4xx` (POP3
 * `-ERR [SYS/TEMP]`/`[IN-USE]`), `closed` (the server closed without a final answer), `timeout`
 * (no answer within the input's deadline).
 */
export type Outcome = '250' | '5xx' | '4xx' | 'closed' | 'timeout';
export const OUTCOMES: readonly Outcome[] = ['250', '5xx', '4xx', 'closed', 'timeout'];

export interface Finding {
  kind: 'crash' | 'restart' | 'probe' | 'tempfail' | 'hang' | 'closed' | 'recoverable-payload' | 'partial-delivery' | 'lost-message' | 'memory' | 'error-log';
  text: string;
  /** Reference the gateway named in its reply, to find the log lines. */
  ref?: string;
}

export interface InputResult {
  index: number;
  category: Category;
  /** Attack name, or the mutators and seed of a message. */
  kind: string;
  outcome: Outcome;
  /** Short reply lines, for the report. */
  replies: string[];
  findings: Finding[];
  /** What was sent (message bytes, or the raw session), saved for a finding. */
  input?: Buffer;
  ms: number;
  /** Mutated message with EICAR delivered: the oracle ran (`clean`/`recovered`) or was skipped. */
  oracle?: 'clean' | 'recovered' | 'skipped';
}

export interface Target {
  host: string;
  port: number;
}

export interface FuzzContext {
  smtp: Target;
  pop3: Target;
  mailRoot: string;
  maildir: MaildirStore;
  /** Checks the SMTP gateway answers EHLO within 5 s (used by attacks that hold a session open). */
  probeSmtp(): Promise<string | undefined>;
  probePop3(): Promise<string | undefined>;
}

/** Classifies an SMTP reply code. */
export const smtpOutcome = (code: number | undefined): Outcome =>
  code === undefined ? 'closed' : code >= 500 ? '5xx' : code >= 400 ? '4xx' : code >= 200 ? '250' : '5xx';

/** Classifies a POP3 status line. */
export const pop3Outcome = (line: string | undefined): Outcome =>
  line === undefined ? 'closed' : line.startsWith('+OK') ? '250' : /^-ERR \[(SYS\/TEMP|IN-USE|LOGIN-DELAY)\]/.test(line) ? '4xx' : '5xx';

export const refOf = (text: string): string | undefined => /\(ref ([\w-]+)\)/.exec(text)?.[1];
