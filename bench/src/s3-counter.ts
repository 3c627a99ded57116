/**
 * Child process: an HTTP proxy in front of the S3 server that counts requests by kind and the
 * bytes moved each way (s3rver runs silent, so its own log has no requests to count).
 *
 *   node s3-counter.js <upstream-host> <upstream-port>
 */
import { Agent, createServer, request } from 'node:http';
import type { AddressInfo } from 'node:net';
import { serveChild } from './child.js';

const [host = '127.0.0.1', portText = '9000'] = process.argv.slice(2);
const upstreamPort = Number(portText);
const agent = new Agent({ keepAlive: true, maxSockets: 256 });

type Kind = 'put' | 'putPart' | 'get' | 'head' | 'delete' | 'multipart' | 'bucket' | 'other';
const KINDS: Kind[] = ['put', 'putPart', 'get', 'head', 'delete', 'multipart', 'bucket', 'other'];
let counts: Record<string, number> = {};
const reset = (): void => {
  counts = { requests: 0, bytesUp: 0, bytesDown: 0, errors: 0 };
  for (const k of KINDS) counts[k] = 0;
};
reset();

function classify(method: string, url: string): Kind {
  const u = new URL(url, 'http://x');
  const isObject = u.pathname.split('/').filter(Boolean).length >= 2;
  const q = u.searchParams;
  if (method === 'PUT') return q.has('partNumber') ? 'putPart' : isObject ? 'put' : 'bucket';
  if (method === 'POST') return q.has('delete') ? 'delete' : q.has('uploads') || q.has('uploadId') ? 'multipart' : 'other';
  if (method === 'DELETE') return q.has('uploadId') ? 'multipart' : 'delete';
  if (method === 'HEAD') return isObject ? 'head' : 'bucket';
  if (method === 'GET') return !isObject ? (q.has('uploads') ? 'multipart' : 'bucket') : 'get';
  return 'other';
}

// Requests grouped by what they do: "/bucket/msg/<ref>/part-1?x=1&y" becomes "/bucket/msg/<ref>/part-N?x&y".
function routeOf(url: string): string {
  const u = new URL(url, 'http://x');
  const path = u.pathname.replace(/\/msg\/[^/]+\//, '/msg/<ref>/').replace(/part-\d+/, 'part-N');
  const q = [...u.searchParams.keys()].sort().join('&');
  return q ? `${path}?${q}` : path;
}

const server = createServer((req, res) => {
  const kind = classify(req.method ?? 'GET', req.url ?? '/');
  counts.requests!++;
  counts[kind]!++;
  const route = `route:${req.method} ${routeOf(req.url ?? '/')}`;
  counts[route] = (counts[route] ?? 0) + 1;
  req.on('data', (c: Buffer) => (counts.bytesUp! += c.length));
  const up = request(
    { host, port: upstreamPort, method: req.method, path: req.url, headers: req.headers, agent },
    (upRes) => {
      res.writeHead(upRes.statusCode ?? 502, upRes.headers);
      upRes.on('data', (c: Buffer) => (counts.bytesDown! += c.length));
      upRes.pipe(res);
      if ((upRes.statusCode ?? 500) >= 500) counts.errors!++;
    },
  );
  up.on('error', (err) => {
    counts.errors!++;
    if (!res.headersSent) res.writeHead(502);
    res.end(String(err.message));
  });
  req.pipe(up);
});
server.keepAliveTimeout = 60_000;
server.listen(0, '127.0.0.1', () => {
  serveChild((server.address() as AddressInfo).port, () => ({ ...counts }), reset);
});
