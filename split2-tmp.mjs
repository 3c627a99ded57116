import { readFileSync } from 'node:fs';
import { Readable } from 'node:stream';
import { Splitter, Joiner } from 'mailsplit';
const buf = readFileSync(process.argv[2]);
async function run(parts) {
  const chunks=[]; for await (const c of Readable.from(parts).pipe(new Splitter()).pipe(new Joiner())) chunks.push(c);
  return Buffer.concat(chunks);
}
const bad=[];
for (let k=1;k<buf.length;k++) {
  const out = await run([buf.subarray(0,k), buf.subarray(k)]);
  if (!out.equals(buf)) bad.push(k);
}
console.log(buf.length, 'bad single cuts:', bad.length, bad.slice(0,20).map(k=>[k, JSON.stringify(buf.subarray(k-3,k).toString()), JSON.stringify(buf.subarray(k,k+3).toString())]));
