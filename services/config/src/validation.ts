import type { TSchema } from '@sinclair/typebox';
import { Value, ValueErrorType, type ValueError } from '@sinclair/typebox/value';
import type { FastifySchemaCompiler } from 'fastify';
import { RequestValidationError, type FieldError } from './http-errors.js';

/** `/subjectPrefix/text` → `subjectPrefix.text` (JSON pointer escapes undone). */
export function dottedPath(pointer: string): string {
  return pointer
    .split('/')
    .slice(1)
    .map((s) => s.replace(/~1/g, '/').replace(/~0/g, '~'))
    .join('.');
}

const SINGLE_LINE = '^[^\\r\\n\\x00]*$';

/** TypeBox's messages, said the way an administrator reads them next to a form field. */
function describe(e: ValueError): string {
  const s = e.schema as Record<string, unknown>;
  switch (e.type) {
    case ValueErrorType.Union: {
      // A union of literals (TLS mode, unscannable action): say which values are allowed.
      const values = Array.isArray(s.anyOf) ? (s.anyOf as TSchema[]).map((x) => x.const) : [];
      if (values.length && values.every((v) => v !== undefined)) return `must be one of ${values.map((v) => JSON.stringify(v)).join(', ')}`;
      return e.message;
    }
    case ValueErrorType.ObjectAdditionalProperties:
      return 'unknown field';
    case ValueErrorType.ObjectRequiredProperty:
      return 'is required';
    case ValueErrorType.StringMinLength:
      return s.minLength === 1 ? 'must not be empty' : `must be at least ${String(s.minLength)} characters long`;
    case ValueErrorType.StringMaxLength:
      return `must be at most ${String(s.maxLength)} characters long`;
    case ValueErrorType.StringPattern:
      return s.pattern === SINGLE_LINE ? 'must be a single line (no line breaks)' : `must match ${String(s.pattern)}`;
    case ValueErrorType.IntegerMinimum:
    case ValueErrorType.NumberMinimum:
      return `must be at least ${String(s.minimum)}`;
    case ValueErrorType.IntegerMaximum:
    case ValueErrorType.NumberMaximum:
      return `must be at most ${String(s.maximum)}`;
    case ValueErrorType.Integer:
      return 'must be a whole number';
    case ValueErrorType.Number:
      return 'must be a number';
    case ValueErrorType.Boolean:
      return 'must be true or false';
    case ValueErrorType.String:
      return 'must be text';
    case ValueErrorType.Object:
      return 'must be an object';
    case ValueErrorType.Literal:
      return `must be ${JSON.stringify(s.const)}`;
    default:
      return e.message;
  }
}

/** Dotted paths of every property in the schema, in declaration order (the order of the form). */
function fieldOrder(schema: TSchema, prefix = '', out = new Map<string, number>()): Map<string, number> {
  const props = schema.properties as Record<string, TSchema> | undefined;
  if (!props) return out;
  for (const [key, child] of Object.entries(props)) {
    const path = prefix ? `${prefix}.${key}` : key;
    out.set(path, out.size);
    fieldOrder(child, path, out);
  }
  return out;
}

/** Every failing field once, in the schema's order; the first is the one the reply's `message` names. */
export function fieldErrors(schema: TSchema, value: unknown): FieldError[] {
  const seen = new Set<string>();
  const out: FieldError[] = [];
  for (const e of Value.Errors(schema, value)) {
    const field = dottedPath(e.path);
    if (seen.has(field)) continue;
    // A missing property also yields "expected boolean" for the same path; the first message wins.
    seen.add(field);
    out.push({ field, message: describe(e) });
    if (out.length >= 50) break;
  }
  // TypeBox reports missing properties before wrong ones; people read top to bottom.
  const order = fieldOrder(schema);
  const rank = (f: string) => (f === '' ? -1 : (order.get(f) ?? Number.MAX_SAFE_INTEGER));
  return out.sort((a, b) => rank(a.field) - rank(b.field));
}

/**
 * Query strings are text: a value is turned into a number or boolean only when it is exactly one
 * ("10", "true"); "2.5" for an integer or "10abc" stays a string and fails the check.
 */
function convertQuery(schema: TSchema, data: unknown): unknown {
  if (typeof data !== 'object' || data === null || !schema.properties) return data;
  const out: Record<string, unknown> = { ...(data as Record<string, unknown>) };
  for (const [key, prop] of Object.entries(schema.properties as Record<string, TSchema>)) {
    const v = out[key];
    if (typeof v !== 'string') continue;
    if (prop.type === 'integer' && /^-?\d{1,15}$/.test(v)) out[key] = Number(v);
    else if (prop.type === 'number' && /^-?\d+(\.\d+)?$/.test(v)) out[key] = Number(v);
    else if (prop.type === 'boolean' && (v === 'true' || v === 'false')) out[key] = v === 'true';
  }
  return out;
}

/**
 * Fastify's validator, replaced by TypeBox's checker: the body is held to exactly the schema
 * the bus uses (`decode()` in @mailwarden/contracts), with no coercion, no defaults filled in
 * and no unknown fields silently dropped. Query strings are converted (strictly) and get their defaults.
 */
export const typeboxValidatorCompiler: FastifySchemaCompiler<TSchema> = ({ schema, httpPart }) => {
  return (data: unknown) => {
    // A body whose fields are all optional may be left out (POST …/release with no body).
    const omitted = httpPart === 'body' && (data === undefined || data === null) && !(schema.required as string[] | undefined)?.length && schema.type === 'object';
    const value = httpPart === 'querystring' ? Value.Default(schema, convertQuery(schema, data ?? {})) : omitted ? {} : data;
    if (Value.Check(schema, value)) return { value };
    return { error: new RequestValidationError(httpPart ?? 'body', fieldErrors(schema, value)) };
  };
};
