import { Readable } from 'node:stream';
import { createHash } from 'node:crypto';
import { Splitter, Joiner } from 'mailsplit';
const SIZE = 30 * 1024 * 1024;
const wrap = process.argv[2] !== 'oneline';
function* gen() {
  yield Buffer.from('From: a@b\r\nSubject: big\r\nMIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary="XX"\r\n\r\n--XX\r\nContent-Type: text/plain\r\n\r\nhello\r\n--XX\r\nContent-Type: application/octet-stream\r\nContent-Transfer-Encoding: base64\r\nContent-Disposition: attachment; filename="big.bin"\r\n\r\n');
  let state = 1;
  const raw = Buffer.alloc(57 * 1024);
  for (let done = 0; done < SIZE; done += raw.length) {
    for (let i = 0; i < raw.length; i++) { state = (state * 1103515245 + 12345) >>> 0; raw[i] = state >>> 24; }
    const b64 = raw.toString('base64');
    yield Buffer.from(wrap ? b64.replace(/.{76}/g, '$&\r\n') + '\r\n' : b64);
  }
  yield Buffer.from('\r\n--XX--\r\n');
}
const rss0 = process.memoryUsage().rss; let peak = rss0;
const timer = setInterval(() => { peak = Math.max(peak, process.memoryUsage().rss); }, 20);
let t = Date.now(); let n=0; for await (const c of Readable.from(gen()).pipe(new Splitter()).pipe(new Joiner())) n+=c.length; console.log("plain", n, Date.now()-t, "ms peak MB", ((peak - rss0) / 1048576).toFixed(1)); clearInterval(timer);
