#!/usr/bin/env node
// npm run policy -- get | set <json-file|-> | history | set-field <dotted.path> <json-value>
import { readFileSync } from 'node:fs';
import { readSettings } from '@mailwarden/config';
import { connectBus, natsSettings } from './connect.js';
import { PolicyStore } from './policy-store.js';

async function main(): Promise<void> {
  const [cmd, a, b] = process.argv.slice(2);
  const bus = await connectBus({ ...natsSettings(readSettings()), name: 'policy-cli' });
  const store = await PolicyStore.open(bus.kvm);
  try {
    if (cmd === 'get' || !cmd) {
      console.log(JSON.stringify(await store.get(), null, 2));
    } else if (cmd === 'history') {
      console.log(JSON.stringify(await store.history(), null, 2));
    } else if (cmd === 'set') {
      const text = readFileSync(a === '-' || !a ? 0 : a, 'utf8');
      console.log(JSON.stringify(await store.put(JSON.parse(text), { changedBy: 'cli' }), null, 2));
    } else if (cmd === 'set-field' && a && b !== undefined) {
      const doc = await store.get();
      const path = a.split('.');
      let node: Record<string, unknown> = doc.policy as unknown as Record<string, unknown>;
      for (const p of path.slice(0, -1)) node = node[p] as Record<string, unknown>;
      node[path[path.length - 1]!] = JSON.parse(b);
      console.log(JSON.stringify(await store.put(doc.policy, { expectedVersion: doc.version, changedBy: 'cli' }), null, 2));
    } else {
      console.error('usage: policy get | history | set <file|-> | set-field <dotted.path> <json-value>');
      process.exitCode = 2;
    }
  } finally {
    await bus.nc.close();
  }
}

main().catch((err: Error) => {
  console.error(`policy: ${err.message}`);
  process.exit(1);
});
