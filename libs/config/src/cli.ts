#!/usr/bin/env node
// print-config: shows the effective settings (secrets masked) or, with --markdown, the README table.
import { SETTINGS } from './settings.js';
import { readSettings } from './load.js';

const secret = /SECRET|TOKEN|PASSWORD|KEY$/;
if (process.argv.includes('--markdown')) {
  console.log('| Variable | Default | Meaning |\n|---|---|---|');
  for (const s of SETTINGS) console.log(`| \`${s.env}\` | ${s.default ? `\`${s.default}\`` : '(empty)'} | ${s.help} |`);
} else {
  const values = readSettings();
  for (const s of SETTINGS) {
    const v = values[s.env];
    console.log(`${s.env}=${secret.test(s.env) && v && s.env !== 'TLS_KEY' ? '***' : v}`);
  }
}
