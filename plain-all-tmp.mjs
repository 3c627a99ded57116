import { readFileSync, readdirSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';
import { Readable } from 'node:stream';
import { Splitter, Joiner } from 'mailsplit';
import { createSplitter } from '/work/main/libs/mime/dist/src/splitter.js';
import { isLeaf } from '/work/main/libs/mime/dist/src/index.js';
const root = '/work/shared/corpus';
const files = [];
const walk = (d) => { for (const e of readdirSync(d)) { const p = join(d, e); if (statSync(p).isDirectory()) { if (e !== 'LICENSES') walk(p); } else if (d !== root) files.push(p); } };
walk(root);
for (const f of files) {
  const buf = readFileSync(f);
  const res = [];
  for (const mk of [() => new Splitter({ defaultInlineEmbedded: true }), createSplitter]) {
    const s = mk(); let leaves = 0; const parts = [];
    const j = new Joiner(); const out = [];
    s.on('data', (o) => { if (o.type === 'node' && isLeaf(o) && !(o.multipart)) leaves++; });
    for await (const c of Readable.from([buf]).pipe(s).pipe(j)) out.push(c);
    res.push({ leaves, same: Buffer.concat(out).equals(buf) });
  }
  if (JSON.stringify(res[0]) !== JSON.stringify(res[1])) console.log(relative(root, f), JSON.stringify(res));
}
