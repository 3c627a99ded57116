/** One changed leaf of the policy, by dotted path; `old` is absent for a field that did not exist before. */
export interface PolicyChange {
  path: string;
  old?: unknown;
  new?: unknown;
}

const isPlainObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

/** Leaf-level differences between two policy documents (objects recursed, anything else compared as JSON). */
export function diffPolicies(before: unknown, after: unknown, prefix = ''): PolicyChange[] {
  if (isPlainObject(before) && isPlainObject(after)) {
    const keys = [...new Set([...Object.keys(before), ...Object.keys(after)])];
    return keys.flatMap((k) => diffPolicies(before[k], after[k], prefix ? `${prefix}.${k}` : k));
  }
  if (before === undefined && isPlainObject(after)) return diffPolicies({}, after, prefix);
  if (after === undefined && isPlainObject(before)) return diffPolicies(before, {}, prefix);
  if (JSON.stringify(before) === JSON.stringify(after)) return [];
  const change: PolicyChange = { path: prefix };
  if (before !== undefined) change.old = before;
  if (after !== undefined) change.new = after;
  return [change];
}
