import { readFile } from 'node:fs/promises';
import { createSecureContext } from 'node:tls';
import { unwatchFile, watchFile } from 'node:fs';
import type { Logger } from '@mailwarden/log';
import { ensureSelfSigned } from './self-signed.js';

export interface TlsFiles {
  cert: string;
  key: string;
}

export interface TlsPair {
  cert: Buffer;
  key: Buffer;
}

/** Only TLS 1.2 and later, for both legs. */
export const MIN_TLS_VERSION = 'TLSv1.2' as const;

/**
 * The gateway's certificate: TLS_CERT/TLS_KEY when given, else a self-signed one generated on first
 * start (logged). The files are watched, so a renewed certificate is used without a restart.
 */
export class TlsMaterial {
  private listeners: ((pair: TlsPair) => void)[] = [];

  private constructor(
    readonly files: TlsFiles,
    private current: TlsPair,
    private readonly log?: Logger,
  ) {}

  static async load(opts: { cert?: string; key?: string; stateDir: string; hostname: string; log?: Logger; watchIntervalMs?: number }): Promise<TlsMaterial> {
    let files: TlsFiles;
    if (opts.cert || opts.key) {
      if (!opts.cert || !opts.key) throw new Error('TLS_CERT and TLS_KEY must be set together');
      files = { cert: opts.cert, key: opts.key };
    } else {
      const made = await ensureSelfSigned(opts.stateDir, opts.hostname);
      files = made;
      opts.log?.warn(
        { event: made.created ? 'tls.self_signed_created' : 'tls.self_signed_used', cert: made.cert },
        made.created ? `no TLS_CERT/TLS_KEY given: generated a self-signed certificate at ${made.cert}` : `no TLS_CERT/TLS_KEY given: using the self-signed certificate at ${made.cert}`,
      );
    }
    const pair = await readPair(files);
    // Fail at start, with the file names, rather than at the first client's handshake.
    try {
      createSecureContext({ key: pair.key, cert: pair.cert });
    } catch (err) {
      throw new Error(`TLS certificate ${files.cert} and key ${files.key} are unusable: ${(err as Error).message}`, { cause: err });
    }
    const m = new TlsMaterial(files, pair, opts.log);
    m.watch(opts.watchIntervalMs ?? 2000);
    return m;
  }

  get pair(): TlsPair {
    return this.current;
  }

  onChange(listener: (pair: TlsPair) => void): void {
    this.listeners.push(listener);
  }

  close(): void {
    unwatchFile(this.files.cert);
    unwatchFile(this.files.key);
  }

  private watch(intervalMs: number): void {
    const reload = () => {
      readPair(this.files)
        .then((pair) => {
          if (pair.cert.equals(this.current.cert) && pair.key.equals(this.current.key)) return;
          // A renewal written file by file is briefly a mismatched pair: wait for the next change.
          createSecureContext({ key: pair.key, cert: pair.cert });
          this.current = pair;
          for (const l of this.listeners) l(pair);
          this.log?.info({ event: 'tls.reloaded', cert: this.files.cert }, 'TLS certificate reloaded');
        })
        // A half-written renewal: keep the old pair, the next change event tries again.
        .catch((err: Error) => this.log?.warn({ event: 'tls.reload_failed', err: err.message }, 'TLS certificate not reloaded (yet)'));
    };
    for (const f of [this.files.cert, this.files.key]) watchFile(f, { interval: intervalMs, persistent: false }, reload);
  }
}

async function readPair(files: TlsFiles): Promise<TlsPair> {
  const [cert, key] = await Promise.all([readFile(files.cert), readFile(files.key)]);
  return { cert, key };
}
