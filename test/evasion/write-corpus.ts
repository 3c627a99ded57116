// Writes the evasion corpus as files: <dir>/<id>.eml (EICAR payload) and <dir>/MANIFEST.tsv
// (id, title, trick, expect). The .eml files contain EICAR: never commit them.
//   npm run evasion:write -- <dir>
import { mkdirSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { CASES, EICAR_PAYLOAD } from './cases.js';

const dir = process.argv[2];
if (!dir) {
  console.error('usage: node test/dist/evasion/write-corpus.js <dir>');
  process.exit(2);
}
const out = resolve(dir);
mkdirSync(out, { recursive: true });
const tsv = (s: string) => s.replace(/[\t\r\n]+/g, ' ');
const rows = ['id\ttitle\ttrick\texpect'];
for (const c of CASES) {
  writeFileSync(join(out, `${c.id}.eml`), c.build(EICAR_PAYLOAD));
  rows.push([c.id, c.title, c.trick, c.expect ?? 'delivered'].map(tsv).join('\t'));
}
writeFileSync(join(out, 'MANIFEST.tsv'), `${rows.join('\n')}\n`);
console.log(`${CASES.length} cases written to ${out}`);
