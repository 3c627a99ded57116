import { readFileSync } from 'node:fs';
import { Readable } from 'node:stream';
import { Splitter, Joiner } from 'mailsplit';
const SZ = Number(process.env.SZ);
const f = process.argv[2];
const buf = readFileSync(f);
const a=[]; for(let i=0;i<buf.length;i+=SZ) a.push(buf.subarray(i,i+SZ));
const opts = process.env.OPTS ? JSON.parse(process.env.OPTS) : {};
const chunks=[]; for await (const c of Readable.from(a).pipe(new Splitter(opts)).pipe(new Joiner())) chunks.push(c);
const out=Buffer.concat(chunks);
console.log(out.length, buf.length, out.equals(buf));
if (process.env.SHOW) { let i=0; while(i<out.length && out[i]===buf[i]) i++; console.log(i, JSON.stringify(buf.subarray(i-60,i+60).toString()), '\n----\n', JSON.stringify(out.subarray(i-60,i+60).toString())); }
