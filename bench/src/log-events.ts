/** Counts a service's JSON log lines by `event`, from a byte offset on (one phase's lines). */
import { readFileSync, statSync } from 'node:fs';

export class LogCursor {
  private offset: number;
  constructor(private readonly file: string) {
    this.offset = LogCursor.size(file);
  }

  private static size(file: string): number {
    try {
      return statSync(file).size;
    } catch {
      return 0;
    }
  }

  /** Parsed JSON lines written since the last call. */
  take(): Record<string, unknown>[] {
    let text: string;
    try {
      text = readFileSync(this.file).subarray(this.offset).toString('utf8');
    } catch {
      return [];
    }
    const end = text.lastIndexOf('\n') + 1;
    this.offset += Buffer.byteLength(text.slice(0, end));
    const out: Record<string, unknown>[] = [];
    for (const line of text.slice(0, end).split('\n')) {
      if (!line.startsWith('{')) continue;
      try {
        out.push(JSON.parse(line) as Record<string, unknown>);
      } catch {
        // not a log line
      }
    }
    return out;
  }
}

export function countEvents(lines: Record<string, unknown>[], filter?: (l: Record<string, unknown>) => boolean): Record<string, number> {
  const out: Record<string, number> = {};
  for (const l of lines) {
    if (filter && !filter(l)) continue;
    const e = typeof l.event === 'string' ? l.event : '?';
    out[e] = (out[e] ?? 0) + 1;
  }
  return out;
}
