#!/usr/bin/env node
// Runs every compiled test file (unit tests next to each package, cross-service tests in test/).
// Files run one at a time: each starts its own real NATS, clamd, S3 server and peers, and two
// cores shared by several such stacks would turn deadlines into flakes.
import { readdirSync, existsSync } from 'node:fs';
import { join } from 'node:path';
import { spawnSync } from 'node:child_process';

const root = new URL('..', import.meta.url).pathname;
const dirs = [];
for (const group of ['libs', 'services']) {
  for (const name of readdirSync(join(root, group))) dirs.push(join(root, group, name, 'dist', 'test'));
}
dirs.push(join(root, 'test', 'dist', 'evasion'), join(root, 'test', 'dist', 'e2e'));
// The drill's and the fuzzer's own unit tests sit next to their sources (src/ compiles to dist/).
dirs.push(join(root, 'drill', 'dist'), join(root, 'fuzz', 'dist'));

const only = process.argv.slice(2);
const files = dirs
  .filter((d) => existsSync(d))
  .flatMap((d) => readdirSync(d).filter((f) => f.endsWith('.test.js')).map((f) => join(d, f)))
  // a compiled test whose source was deleted (an older build's leftover) is not run
  .filter((f) => [f.replace(/[/\\]dist[/\\]/, '/'), f.replace(/[/\\]dist[/\\]/, '/src/')].some((src) => existsSync(src.replace(/\.js$/, '.ts'))))
  .filter((f) => !only.length || only.some((o) => f.includes(o)));

if (!files.length) {
  console.error('no compiled tests found: did the build run?');
  process.exit(1);
}
const r = spawnSync(process.execPath, ['--test', '--test-concurrency=1', '--test-reporter=spec', ...files], { stdio: 'inherit' });
process.exit(r.status ?? 1);
