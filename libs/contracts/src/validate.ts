import type { Static, TSchema } from '@sinclair/typebox';
import { Value } from '@sinclair/typebox/value';

export class ContractError extends Error {
  override name = 'ContractError';
  constructor(
    message: string,
    readonly path: string,
  ) {
    super(message);
  }
}

/** Parses and checks a bus payload or REST body; throws ContractError naming the first bad field. */
export function decode<T extends TSchema>(schema: T, input: unknown): Static<T> {
  const value = typeof input === 'string' || input instanceof Uint8Array ? JSON.parse(Buffer.from(input).toString('utf8')) : input;
  if (Value.Check(schema, value)) return value;
  const first = Value.Errors(schema, value).First();
  const path = first?.path || '/';
  throw new ContractError(`${path}: ${first?.message ?? 'invalid'}`, path);
}

export function encode<T extends TSchema>(_schema: T, value: Static<T>): Uint8Array {
  return Buffer.from(JSON.stringify(value));
}
