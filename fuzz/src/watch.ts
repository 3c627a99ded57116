/**
 * Watching the stack while it is fuzzed: the Mailwarden services run under the local stack's
 * supervisor (restarts are logged and counted), the dependencies' pids are checked for life, and
 * every process's RSS is sampled.
 */
import { readFileSync } from 'node:fs';
import { superviseService, type LocalStack, type SupervisedService } from '@mailwarden/local-stack';
import { rssMb } from '../../bench/dist/proc.js';

export const FUZZED_SERVICES = ['scanner', 'reassembler', 'smtp-gateway', 'pop3-gateway'] as const;

export interface ProcMemory {
  name: string;
  pids: number[];
  startMb: number;
  peakMb: number;
  endMb: number;
}

export interface SupervisorEvent {
  at: number;
  /** The input running (or last run) when it happened. */
  index: number;
  line: string;
}

function alive(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2)[0] !== 'Z';
  } catch {
    return false;
  }
}

export class StackWatch {
  readonly supervised: SupervisedService[] = [];
  readonly events: SupervisorEvent[] = [];
  readonly memory = new Map<string, ProcMemory>();
  currentIndex = -1;
  private timer: NodeJS.Timeout | undefined;
  private deps: Record<string, number> = {};
  private deadDeps = new Set<string>();

  constructor(private readonly stack: LocalStack) {}

  async start(env: Record<string, string>): Promise<void> {
    this.deps = { nats: this.stack.nats.pid!, s3rver: this.stack.s3.pid, clamd: this.stack.clamd.pid, dovecot: this.stack.dovecot.pid };
    for (const name of FUZZED_SERVICES) {
      const svc = superviseService(name, { ...env, ...this.stack.natsEnv(name) }, {
        stateDir: this.stack.stateDir,
        readyTimeoutMs: 60_000,
        report: (line) => this.events.push({ at: Date.now(), index: this.currentIndex, line }),
      });
      this.supervised.push(svc);
      if (!(await svc.firstStart)) throw new Error(`fuzz: ${name} did not start (log: ${this.stack.stateDir}/logs/${name}.log)`);
    }
    this.sample();
    this.timer = setInterval(() => this.sample(), 1000);
  }

  pids(): Record<string, number> {
    const out: Record<string, number> = { ...this.deps };
    for (const s of this.supervised) {
      const pid = s.current()?.pid;
      if (pid) out[s.name] = pid;
    }
    return out;
  }

  private sample(): void {
    for (const [name, pid] of Object.entries(this.pids())) {
      const mb = rssMb(pid);
      if (mb === undefined) continue;
      const m = this.memory.get(name);
      if (!m) this.memory.set(name, { name, pids: [pid], startMb: mb, peakMb: mb, endMb: mb });
      else {
        if (!m.pids.includes(pid)) m.pids.push(pid);
        m.peakMb = Math.max(m.peakMb, mb);
        m.endMb = mb;
      }
    }
  }

  /** Problems seen since the last call: dead dependencies, services not running. */
  check(): string[] {
    const out: string[] = [];
    for (const [name, pid] of Object.entries(this.deps)) {
      if (!this.deadDeps.has(name) && !alive(pid)) {
        this.deadDeps.add(name);
        out.push(`${name} (pid ${pid}) is no longer running`);
      }
    }
    for (const s of this.supervised) if (!s.current()) out.push(`${s.name} is not running (supervisor restarting it)`);
    return out;
  }

  /** Supervisor lines that mean a process exited or restarted. */
  restarts(): SupervisorEvent[] {
    return this.events.filter((e) => /exited|restart|failed to start/.test(e.line));
  }

  async stop(): Promise<void> {
    clearInterval(this.timer);
    this.sample();
    for (const s of this.supervised) s.stopRestarting();
    for (const s of [...this.supervised].reverse()) await s.stop().catch(() => undefined);
  }
}
