/**
 * The evasion corpus (issue 10): messages built the way malware senders build them, each hiding
 * one payload behind one parser disagreement. Themes live in ./cases/*.ts; this file only
 * aggregates them and checks the ids.
 */
import { archiveCases } from './cases/archives.js';
import { bodyEncodingCases } from './cases/body-encoding.js';
import { boundaryCases } from './cases/boundary.js';
import { htmlSmugglingCases } from './cases/html-smuggling.js';
import { inlineEncodingCases } from './cases/inline-encodings.js';
import { nestedCases } from './cases/nested.js';
import { sanityCases } from './cases/sanity.js';
import { smimeCases } from './cases/smime.js';
import { structureCases } from './cases/structure.js';
import { transferEncodingCases } from './cases/transfer-encoding.js';
import type { EvasionCase } from './build.js';

export * from './build.js';

/** Cases by theme (the theme name is what reports group by). */
export const THEMES: Record<string, EvasionCase[]> = {
  'transfer-encoding': transferEncodingCases,
  'body-encoding': bodyEncodingCases,
  'inline-encodings': inlineEncodingCases,
  'html-smuggling': htmlSmugglingCases,
  boundary: boundaryCases,
  structure: structureCases,
  nested: nestedCases,
  archives: archiveCases,
  smime: smimeCases,
  sanity: sanityCases,
};

export const CASES: EvasionCase[] = Object.values(THEMES).flat();

const seen = new Set<string>();
for (const c of CASES) {
  if (!/^[a-z0-9]+(-[a-z0-9]+)*$/.test(c.id)) throw new Error(`case id not kebab-case: ${c.id}`);
  if (seen.has(c.id)) throw new Error(`duplicate case id: ${c.id}`);
  seen.add(c.id);
}
