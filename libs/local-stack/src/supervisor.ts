/**
 * Keeps one service running for `npm start`: restarts it when it exits or fails to become
 * ready, with exponential backoff (1 s, 2 s, 4 s … 30 s; back to 1 s after a minute of uptime).
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { startService, type RunningService, type StartServiceOptions } from './service.js';

export interface SupervisedService {
  name: string;
  /** The current process, if one is running. */
  current(): RunningService | undefined;
  /** Resolves once the first start attempt is over (ready or failed). */
  firstStart: Promise<RunningService | undefined>;
  /** Stops restarting (the process keeps running): call on every service before stopping any. */
  stopRestarting(): void;
  /** Stops restarting and stops the process. */
  stop(): Promise<void>;
}

export interface SuperviseOptions extends StartServiceOptions {
  /** Called with a human-readable line for every start, exit and restart. */
  report?: (line: string) => void;
  minBackoffMs?: number;
  maxBackoffMs?: number;
}

export function superviseService(
  name: string,
  env: Record<string, string | undefined>,
  opts: SuperviseOptions = {},
): SupervisedService {
  const report = opts.report ?? ((l: string) => console.log(l));
  const minBackoff = opts.minBackoffMs ?? 1000;
  const maxBackoff = opts.maxBackoffMs ?? 30_000;
  let stopped = false;
  let current: RunningService | undefined;
  let wake: AbortController | undefined;
  let resolveFirst!: (s: RunningService | undefined) => void;
  const firstStart = new Promise<RunningService | undefined>((r) => (resolveFirst = r));

  const loop = async (): Promise<void> => {
    let backoff = minBackoff;
    let first = true;
    while (!stopped) {
      const started = Date.now();
      try {
        current = await startService(name, env, opts);
        if (stopped) {
          await current.stop();
          current = undefined;
          if (first) resolveFirst(undefined);
          return;
        }
        if (first) resolveFirst(current);
        else report(`${name}: restarted (pid ${current.pid})`);
        first = false;
        const code = await current.exited;
        current = undefined;
        if (stopped) return;
        report(`${name}: exited with code ${code}; see ${opts.stateDir ?? ''}/logs/${name}.log`);
      } catch (err) {
        current = undefined;
        if (first) resolveFirst(undefined);
        first = false;
        if (stopped) return;
        report(`${name}: failed to start: ${(err as Error).message.split('\n')[0]}`);
      }
      if (Date.now() - started > 60_000) backoff = minBackoff;
      report(`${name}: restarting in ${(backoff / 1000).toFixed(0)} s`);
      wake = new AbortController();
      await sleep(backoff, undefined, { signal: wake.signal }).catch(() => undefined);
      backoff = Math.min(backoff * 2, maxBackoff);
    }
  };
  const done = loop();

  return {
    name,
    current: () => current,
    firstStart,
    stopRestarting() {
      stopped = true;
      wake?.abort();
    },
    async stop() {
      stopped = true;
      wake?.abort();
      await current?.stop();
      await done;
    },
  };
}
