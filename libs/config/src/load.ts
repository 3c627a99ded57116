import { SETTINGS, type SettingName } from './settings.js';

export class ConfigError extends Error {
  override name = 'ConfigError';
}

export type Env = Record<string, string | undefined>;

/** Raw string values, env over default. */
export function readSettings(env: Env = process.env): Record<SettingName, string> {
  const out = {} as Record<SettingName, string>;
  for (const s of SETTINGS) out[s.env] = env[s.env]?.trim() || s.default;
  return out;
}

export interface HostPort {
  host: string;
  port: number;
}

export function parseHostPort(value: string, name = 'address'): HostPort {
  const m = /^\[?([^\]]*?)\]?:(\d{1,5})$/.exec(value.trim());
  if (!m || !m[1]) throw new ConfigError(`${name}: expected host:port, got "${value}"`);
  const port = Number(m[2]);
  if (port > 65535) throw new ConfigError(`${name}: port out of range in "${value}"`);
  return { host: m[1], port };
}

export function parseInteger(value: string, name: string, min = 0): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < min) throw new ConfigError(`${name}: expected an integer ≥ ${min}, got "${value}"`);
  return n;
}
