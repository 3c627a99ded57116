/**
 * The benchmark's helper processes (SMTP sink, S3 request counter) run as children with an IPC
 * channel, so their CPU is measured apart and they do not share the load generator's event loop.
 */
import { fork, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';

export type ChildRequest = { id: number; op: 'stats' | 'reset' };
export type ChildReply = { id: number; stats: Record<string, number> };
export type ChildReady = { ready: true; port: number };

export interface BenchChild {
  name: string;
  pid: number;
  port: number;
  stats(): Promise<Record<string, number>>;
  reset(): Promise<void>;
  stop(): Promise<void>;
}

/** Forks `bench/dist/<entry>.js` and waits for its `{ready, port}` message. */
export async function startChild(name: string, entry: string, args: string[] = []): Promise<BenchChild> {
  const file = fileURLToPath(new URL(`./${entry}.js`, import.meta.url));
  const child: ChildProcess = fork(file, args, { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
  const port = await new Promise<number>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`${name} did not start within 10 s`)), 10_000);
    child.once('exit', (code) => reject(new Error(`${name} exited with ${code} before it was ready`)));
    child.on('message', (m: unknown) => {
      if (m && typeof m === 'object' && 'ready' in m) {
        clearTimeout(timer);
        resolve((m as ChildReady).port);
      }
    });
  });
  let next = 0;
  const ask = (op: ChildRequest['op']): Promise<Record<string, number>> =>
    new Promise((resolve, reject) => {
      const id = ++next;
      const timer = setTimeout(() => reject(new Error(`${name}: no answer to ${op}`)), 10_000);
      const onMessage = (m: unknown): void => {
        if (m && typeof m === 'object' && (m as ChildReply).id === id) {
          clearTimeout(timer);
          child.off('message', onMessage);
          resolve((m as ChildReply).stats);
        }
      };
      child.on('message', onMessage);
      child.send({ id, op } satisfies ChildRequest);
    });
  return {
    name,
    pid: child.pid!,
    port,
    stats: () => ask('stats'),
    reset: async () => {
      await ask('reset');
    },
    stop: () =>
      new Promise<void>((resolve) => {
        if (child.exitCode !== null || child.signalCode !== null) return resolve();
        const timer = setTimeout(() => child.kill('SIGKILL'), 3000);
        child.once('exit', () => {
          clearTimeout(timer);
          resolve();
        });
        child.kill('SIGTERM');
      }),
  };
}

/** Child side: answers stats/reset requests from the parent; exits when the parent goes. */
export function serveChild(port: number, stats: () => Record<string, number>, reset: () => void): void {
  process.on('message', (m: ChildRequest) => {
    if (m.op === 'reset') reset();
    process.send?.({ id: m.id, stats: stats() } satisfies ChildReply);
  });
  process.on('disconnect', () => process.exit(0));
  process.once('SIGTERM', () => process.exit(0));
  process.send?.({ ready: true, port } satisfies ChildReady);
}
