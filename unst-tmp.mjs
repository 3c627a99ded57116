import { DotUnstuffer } from './libs/mime/dist/src/index.js';
for (const size of [0, 1, 4]) {
  const u = new DotUnstuffer();
  const data = Buffer.from('line 1\r\n..line 2\r\n.\r\n+OK next');
  const out = []; u.on('data', c => out.push(c)); const ended = new Promise(r => u.on('end', r));
  const chunks = size ? Array.from({ length: Math.ceil(data.length / size) }, (_, i) => data.subarray(i * size, (i + 1) * size)) : [data];
  for (const c of chunks) u.write(c);
  await ended;
  console.log(size, JSON.stringify(u.remainder.toString()), u.writableLength);
  await new Promise(r => u.write(' response\r\n', r));
  console.log(size, JSON.stringify(u.remainder.toString()));
}
