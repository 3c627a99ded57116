import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { relative } from 'node:path';
import { Readable } from 'node:stream';
import { buffer } from 'node:stream/consumers';
import { describe, it } from 'node:test';
import { spliceMessage, type SpliceReplacement } from '@mailwarden/mime';
import { corpusDir, corpusFiles } from '@mailwarden/testkit';
import { AnalysisLimitError, analyzeMessage, MemorySource, type Analysis } from '../src/index.js';
import { fakeEngine } from './helpers.js';

// Real-world and malformed messages (../shared/corpus, when present): the analysis neither throws
// nor hangs on any of them, and its part map is consistent: every range inside the message and
// inside its parent's, every header end inside its range. One message carries EICAR (listed below):
// it must be flagged; no other may be.
const PAYLOADS = new Set(['james-project/inlineVirusTextAttachment.eml']);

// Messages whose leaves, all replaced by spliceMessage, are not all read back as notices (none
// today; nodemailer-mailparser/decoderended.eml was one until an embedded message without a body
// became a leaf of its own).
const SPLICE_KNOWN = new Set<string>();

function checkMap(name: string, size: number, a: Analysis): void {
  const byPath = new Map(a.parts.map((p) => [p.path, p]));
  assert.ok(byPath.has('1'), `${name}: no root`);
  for (const p of a.parts) {
    assert.ok(p.range.start <= p.headerEnd && p.headerEnd <= p.range.end && p.range.end <= size, `${name}: ${p.path} range ${JSON.stringify(p.range)} / ${p.headerEnd}`);
    const parent = byPath.get(p.path.split('.').slice(0, -1).join('.'));
    if (parent) assert.ok(parent.range.start <= p.range.start && p.range.end <= parent.range.end, `${name}: ${p.path} outside its parent`);
    if (!PAYLOADS.has(name)) assert.equal(p.verdict.kind, 'clean', `${name}: ${p.path} flagged`);
  }
  if (PAYLOADS.has(name)) assert.ok(a.parts.some((p) => p.verdict.kind === 'infected'), `${name}: payload not found`);
  assert.ok(a.rootHeader.end <= size);
}

const dir = corpusDir();

describe('analysis over the corpus', { skip: dir ? false : 'no corpus (set MAILWARDEN_CORPUS or put it at ../shared/corpus)' }, () => {
  if (!dir) return;
  it('analyses every message with a consistent part map', async () => {
    const failures: string[] = [];
    let limited = 0;
    for (const file of corpusFiles(dir)) {
      const name = relative(dir, file);
      const bytes = readFileSync(file);
      try {
        const a = await analyzeMessage(new MemorySource(bytes), { scan: fakeEngine().scan });
        checkMap(name, bytes.length, a);
      } catch (err) {
        if (err instanceof AnalysisLimitError) limited++;
        else failures.push(`${name}: ${(err as Error).message.split('\n')[0]}`);
      }
    }
    assert.deepEqual(failures, []);
    assert.ok(limited <= 2, `${limited} corpus messages hit the analysis limits`);
  });

  it('reads every leaf back as its notice once the reassembler replaced them all (spliceMessage)', async () => {
    const failures: string[] = [];
    for (const file of corpusFiles(dir)) {
      const name = relative(dir, file);
      const bytes = readFileSync(file);
      try {
        const before = await analyzeMessage(new MemorySource(bytes), { scan: fakeEngine().scan });
        const leaves = before.parts.filter((p) => p.kind === 'leaf');
        const replace = leaves.map((p, i): SpliceReplacement => ({ kind: 'leaf', range: p.range, headerEnd: p.headerEnd, noticeText: `notice ${i}`, noticeFilename: `leaf-${i}.txt` }));
        const sha256 = createHash('sha256').update(bytes).digest('hex');
        const output = await buffer(spliceMessage(Readable.from([bytes]), { size: bytes.length, sha256, rootHeader: before.rootHeader, replace, subjectPrefix: '[V]' }));
        const after = await analyzeMessage(new MemorySource(output), { scan: fakeEngine().scan });
        const names = after.parts.filter((p) => p.kind === 'leaf').map((p) => p.filename);
        const expected = leaves.map((_, i) => `leaf-${i}.txt`);
        const known = SPLICE_KNOWN.has(name);
        if (JSON.stringify(names) === JSON.stringify(expected)) assert.ok(!known, `${name} works now: take it off SPLICE_KNOWN`);
        else if (!known) failures.push(`${name}: ${leaves.length} leaves, read back as ${JSON.stringify(names)}`);
      } catch (err) {
        if (!(err instanceof AnalysisLimitError)) failures.push(`${name}: ${(err as Error).message.split('\n')[0]}`);
      }
    }
    assert.deepEqual(failures, []);
  });
});
