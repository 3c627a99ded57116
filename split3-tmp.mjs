import { readFileSync } from 'node:fs';
import { Readable } from 'node:stream';
import { Splitter, Joiner } from 'mailsplit';
const buf = readFileSync(process.argv[2]);
async function run(parts) {
  const chunks=[]; for await (const c of Readable.from(parts).pipe(new Splitter()).pipe(new Joiner())) chunks.push(c);
  return Buffer.concat(chunks);
}
const bad=[];
for (let k=1;k<buf.length;k++) for (let w=1; w<=12 && k+w<buf.length; w++) {
  const mid = buf.subarray(k,k+w);
  const out = await run([buf.subarray(0,k), mid, buf.subarray(k+w)]);
  if (!out.equals(buf)) bad.push([k,w, JSON.stringify(buf.subarray(k-4,k).toString()), JSON.stringify(mid.toString()), JSON.stringify(buf.subarray(k+w,k+w+4).toString()), mid.includes(10)]);
}
console.log(bad.length, 'bad; middle chunk has LF in', bad.filter(b=>b[5]).length);
console.log(bad.slice(0,30));
