/**
 * The faults the drill applies to the real stack, one at a time, each undone before the next:
 * SIGKILL of a scanner, a reassembler or the SMTP gateway (restarted here, explicitly, after a
 * short pause: the local supervisor's crash backoff would otherwise be what we measure), clamd
 * frozen with SIGSTOP for a few seconds, the S3 server restarted, and NATS restarted once on the
 * same port with the same JetStream store directory.
 */
import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { startNats, startS3, type LocalStack, type RunningNats, type RunningS3, type RunningService } from '@mailwarden/local-stack';

export type FaultKind = 'kill-scanner' | 'kill-reassembler' | 'kill-gateway' | 'stall-clamd' | 'restart-s3' | 'restart-nats';

export interface FaultRecord {
  kind: FaultKind;
  /** Seconds since the drill's load started. */
  atS: number;
  /** Which process (e.g. `scanner#1 pid 1234`). */
  target: string;
  /** From the signal to the component being back (restarted and ready, or SIGCONT). */
  durationMs: number;
  ok: boolean;
  detail: string;
}

export interface FaultOptions {
  stack: LocalStack;
  /** The running Mailwarden services by name; restarted processes replace their entry. */
  services: Record<string, RunningService[]>;
  random: () => number;
  /** Start of the load (for `atS`). */
  t0: number;
  stallMs: number;
  log: (line: string) => void;
}

const KILLABLE: Record<string, string> = { 'kill-scanner': 'scanner', 'kill-reassembler': 'reassembler', 'kill-gateway': 'smtp-gateway' };
/** The recurring faults, drawn from a shuffled bag (each kind once per round, so every kind is applied); NATS is restarted once, at a chosen point. */
const RECURRING: FaultKind[] = ['kill-scanner', 'kill-reassembler', 'kill-gateway', 'stall-clamd', 'restart-s3'];

export class FaultInjector {
  readonly records: FaultRecord[] = [];
  private nats: RunningNats;
  private s3: RunningS3;
  private replacedNats = false;
  private replacedS3 = false;
  private clamdStopped = false;

  constructor(private readonly o: FaultOptions) {
    this.nats = o.stack.nats;
    this.s3 = o.stack.s3;
  }

  private bag: FaultKind[] = [];

  pick(): FaultKind {
    if (!this.bag.length) {
      this.bag = [...RECURRING];
      for (let k = this.bag.length - 1; k > 0; k--) {
        const j = Math.floor(this.o.random() * (k + 1));
        [this.bag[k], this.bag[j]] = [this.bag[j]!, this.bag[k]!];
      }
    }
    return this.bag.pop()!;
  }

  /**
   * Applies faults until `signal` aborts: a pause of `intervalMs` × (0.5…1.5), then one fault.
   * `natsDue()` turning true makes the next fault the (single) NATS restart.
   */
  async run(intervalMs: number, natsDue: () => boolean, signal: AbortSignal): Promise<void> {
    let natsDone = false;
    while (!signal.aborted) {
      const ok = await sleep(intervalMs * (0.5 + this.o.random()), true, { signal }).catch(() => false);
      if (!ok || signal.aborted) break;
      const kind: FaultKind = !natsDone && natsDue() ? 'restart-nats' : this.pick();
      if (kind === 'restart-nats') natsDone = true;
      await this.apply(kind);
    }
  }

  async apply(kind: FaultKind): Promise<FaultRecord> {
    const atS = (Date.now() - this.o.t0) / 1000;
    const started = Date.now();
    const rec: FaultRecord = { kind, atS, target: '', durationMs: 0, ok: true, detail: '' };
    try {
      if (kind in KILLABLE) await this.killAndRestart(KILLABLE[kind]!, rec);
      else if (kind === 'stall-clamd') await this.stallClamd(rec);
      else if (kind === 'restart-s3') await this.restartS3(rec);
      else await this.restartNats(rec);
    } catch (err) {
      rec.ok = false;
      rec.detail += `${rec.detail ? '; ' : ''}FAILED: ${(err as Error).message.split('\n')[0]}`;
    }
    rec.durationMs = Date.now() - started;
    this.records.push(rec);
    this.o.log(`fault ${kind} ${rec.target} (${rec.durationMs} ms)${rec.ok ? '' : ' ' + rec.detail}`);
    return rec;
  }

  private async killAndRestart(name: string, rec: FaultRecord): Promise<void> {
    const list = this.o.services[name]!;
    const idx = Math.floor(this.o.random() * list.length);
    const victim = list[idx]!;
    rec.target = `${name}#${idx + 1} pid ${victim.pid}`;
    const killedAt = new Date().toISOString().slice(11, 23);
    await victim.kill();
    const pause = 300 + Math.floor(this.o.random() * 1200);
    await sleep(pause);
    list[idx] = await this.restart(name, rec);
    rec.detail = `SIGKILL at ${killedAt}, down ${pause} ms, restarted as pid ${list[idx]!.pid}${rec.detail ? ' ' + rec.detail : ''}`;
  }

  /** A restart can fail (e.g. the gateway's port briefly taken): try again a few times. */
  private async restart(name: string, rec: FaultRecord): Promise<RunningService> {
    for (let attempt = 1; ; attempt++) {
      try {
        return await this.o.stack.startService(name);
      } catch (err) {
        if (attempt >= 5) throw err;
        rec.detail += `(start attempt ${attempt} failed: ${(err as Error).message.split('\n')[0]}) `;
        await sleep(1000);
      }
    }
  }

  private async stallClamd(rec: FaultRecord): Promise<void> {
    const pid = this.o.stack.clamd.pid;
    rec.target = `clamd pid ${pid}`;
    process.kill(pid, 'SIGSTOP');
    this.clamdStopped = true;
    try {
      await sleep(this.o.stallMs);
    } finally {
      process.kill(pid, 'SIGCONT');
      this.clamdStopped = false;
    }
    rec.detail = `SIGSTOP ${this.o.stallMs} ms, SIGCONT`;
  }

  private async restartS3(rec: FaultRecord): Promise<void> {
    const old = this.s3;
    rec.target = `s3rver pid ${old.pid}`;
    await old.stop();
    const pause = 200 + Math.floor(this.o.random() * 800);
    await sleep(pause);
    this.s3 = await startS3({ stateDir: this.o.stack.stateDir, port: old.port, host: old.host, buckets: [this.o.stack.env.S3_BUCKET] });
    this.replacedS3 = true;
    rec.detail = `SIGTERM, down ${pause} ms, restarted on port ${old.port} (same object dir) as pid ${this.s3.pid}`;
  }

  private async restartNats(rec: FaultRecord): Promise<void> {
    const old = this.nats;
    rec.target = `nats-server pid ${old.pid}`;
    const storeDir = join(this.o.stack.stateDir, 'nats');
    const before = countFiles(storeDir);
    await old.stop();
    await sleep(1000);
    this.nats = await startNats({ stateDir: this.o.stack.stateDir, port: old.port, host: old.host });
    this.replacedNats = true;
    rec.detail = `SIGTERM, down 1000 ms, restarted on port ${old.port} with the same JetStream store (${before} files before, ${countFiles(storeDir)} after) as pid ${this.nats.pid}`;
  }

  /** Undoes what is still applied (a frozen clamd) and stops the replacement NATS and S3 servers. */
  async cleanup(): Promise<void> {
    if (this.clamdStopped) {
      try {
        process.kill(this.o.stack.clamd.pid, 'SIGCONT');
      } catch {
        // gone
      }
    }
  }

  /** After `stack.stop()`: the servers started here are not the stack's to stop. */
  async stopReplacements(): Promise<void> {
    if (this.replacedS3) await this.s3.stop().catch(() => undefined);
    if (this.replacedNats) await this.nats.stop().catch(() => undefined);
  }
}

function countFiles(dir: string): number {
  try {
    return readdirSync(dir, { recursive: true }).length;
  } catch {
    return 0;
  }
}
