#!/usr/bin/env node
// Container health probe (Dockerfile HEALTHCHECK, docker-compose healthcheck): GET /healthz, or the
// path given as the first argument (e.g. /readyz), on this process's ops endpoint (OPS_LISTEN).
// Exit 0 on HTTP 200, 1 otherwise. Plain Node, no dependencies, a 4 s deadline.
import { request } from 'node:http';

const path = process.argv[2] || '/healthz';
const listen = (process.env.OPS_LISTEN ?? '').trim();
if (listen === '' || listen.toLowerCase() === 'off') {
  console.log('OPS_LISTEN is off: no health endpoint to probe');
  process.exit(0);
}
const m = /^\[?([^\]]*?)\]?:(\d{1,5})$/.exec(listen);
if (!m) {
  console.log(`OPS_LISTEN="${listen}" is not host:port`);
  process.exit(1);
}
const port = Number(m[2]);
if (port === 0) {
  console.log('OPS_LISTEN has port 0 (random): nothing fixed to probe');
  process.exit(0);
}
// A wildcard listener is probed on loopback.
const host = ['', '0.0.0.0', '::', '*'].includes(m[1]) ? '127.0.0.1' : m[1];

const req = request({ host, port, path, method: 'GET', timeout: 4000 }, (res) => {
  let body = '';
  res.setEncoding('utf8');
  res.on('data', (c) => (body += c));
  res.on('end', () => {
    console.log(`${path} ${res.statusCode} ${body.slice(0, 500)}`);
    process.exit(res.statusCode === 200 ? 0 : 1);
  });
});
req.on('timeout', () => req.destroy(new Error(`no answer from ${host}:${port}${path} within 4 s`)));
req.on('error', (err) => {
  console.log(`${path}: ${err.message}`);
  process.exit(1);
});
req.end();
