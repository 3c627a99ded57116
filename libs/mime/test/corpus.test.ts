import assert from 'node:assert/strict';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';
import { Readable } from 'node:stream';
import { describe, it } from 'node:test';
import { extractParts, rebuildMessage, type LeafInfo } from '../src/index.js';
import { collect, corpusDir } from './helpers.js';

// Real-world and malformed messages from /work/shared/corpus (see its README.md): split→join must
// give the exact bytes back, extraction must neither throw nor hang, and leaf numbering must agree
// between extraction and rebuild. The corpus is not in the repository: without it (or
// $MAILWARDEN_CORPUS) these tests are skipped.
//
// Files mailsplit refuses (an error is then expected, cleanly, from both): none. Every one of the
// 391 files of the corpus splits and joins back exactly. (Its limits, 1000 parts per message and
// 1 MiB per header block, are covered by synthetic tests.)
const EXPECTED_ERRORS = new Map<string, RegExp>();

const DEADLINE_MS = 10_000;

function corpusFiles(dir: string): string[] {
  const files: string[] = [];
  const walk = (folder: string): void => {
    for (const name of readdirSync(folder).sort()) {
      const path = join(folder, name);
      if (folder === dir && ['README.md', 'MANIFEST.tsv', 'LICENSES', '.gitattributes'].includes(name)) continue;
      if (statSync(path).isDirectory()) walk(path);
      else files.push(path);
    }
  };
  walk(dir);
  return files;
}

/** Deterministic pseudo-random chunk sizes in [1, 64]. */
function chunked(data: Buffer, size: number | 'random'): Readable {
  let seed = data.length;
  const chunks: Buffer[] = [];
  for (let i = 0; i < data.length; ) {
    seed = (seed * 1103515245 + 12345) % 2147483648;
    const n = size === 'random' ? 1 + (seed % 64) : size;
    chunks.push(data.subarray(i, i + n));
    i += n;
  }
  return Readable.from(chunks.length ? chunks : [Buffer.alloc(0)]);
}

function deadline<T>(promise: Promise<T>, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what}: no result after ${DEADLINE_MS} ms`)), DEADLINE_MS);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

interface Extracted {
  leaves: { info: LeafInfo; data: Buffer }[];
  count: number;
}

async function extract(stream: Readable): Promise<Extracted> {
  const leaves: Extracted['leaves'] = [];
  const result = await extractParts(stream, async (info, decoded) => {
    leaves[info.index] = { info, data: await collect(decoded) };
  });
  return { leaves, count: result.leaves };
}

/**
 * Decoded bytes of the same leaf under two chunkings. One known mailsplit quirk is tolerated: a
 * body made of a single empty line before a boundary comes out as that line break or as nothing,
 * depending on where chunks end (the line break is given to the body or to the delimiter).
 */
function sameDecoded(a: Buffer, b: Buffer): boolean {
  if (a.equals(b)) return true;
  const lineBreak = (x: Buffer): boolean => x.toString() === '\n' || x.toString() === '\r\n';
  return (a.length === 0 && lineBreak(b)) || (b.length === 0 && lineBreak(a));
}

async function checkFile(file: string, name: string): Promise<void> {
  const original = readFileSync(file);
  const expectedError = EXPECTED_ERRORS.get(name);
  if (expectedError) {
    await assert.rejects(deadline(collect(rebuildMessage(chunked(original, 4096), { replace: new Map() })), `${name} rebuild`), expectedError);
    await assert.rejects(deadline(extract(chunked(original, 4096)), `${name} extract`), expectedError);
    return;
  }

  for (const size of [1 << 30, 'random'] as const) {
    const rebuilt = await deadline(collect(rebuildMessage(chunked(original, size), { replace: new Map() })), `${name} rebuild`);
    assert.ok(rebuilt.equals(original), `${name}: rebuilt bytes differ (chunks of ${size})`);
  }

  const base = await deadline(extract(chunked(original, 1 << 30)), `${name} extract`);
  assert.ok(base.count >= 1, `${name}: no leaf`);
  for (const size of ['random'] as const) {
    const other = await deadline(extract(chunked(original, size)), `${name} extract`);
    assert.equal(other.count, base.count, `${name}: leaf count depends on chunking`);
    for (let i = 0; i < base.count; i++) {
      assert.deepEqual(other.leaves[i]?.info, base.leaves[i]?.info, `${name}: leaf ${i} info depends on chunking`);
      assert.ok(sameDecoded(other.leaves[i]?.data ?? Buffer.alloc(0), base.leaves[i]?.data ?? Buffer.alloc(0)), `${name}: leaf ${i} bytes depend on chunking`);
    }
  }

  // numbering agrees: replace every leaf, then every leaf of the result is the matching notice
  const replace = new Map(Array.from({ length: base.count }, (_, i) => [i, { noticeText: `notice for leaf ${i}`, noticeFilename: `leaf-${i}.txt` }]));
  const replaced = await deadline(collect(rebuildMessage(chunked(original, 'random'), { replace, subjectPrefix: '[VIRUS REMOVED]' })), `${name} rebuild`);
  const after = await deadline(extract(chunked(replaced, 1 << 30)), `${name} extract of the rebuilt message`);
  assert.equal(after.count, base.count, `${name}: leaf count changed by replacing every leaf`);
  for (let i = 0; i < base.count; i++) {
    assert.equal(after.leaves[i]?.info.filename, `leaf-${i}.txt`, `${name}: leaf ${i} not replaced`);
    assert.equal(after.leaves[i]?.data.toString(), `notice for leaf ${i}\r\n`, `${name}: leaf ${i} notice body`);
  }
}

const dir = corpusDir();

describe('corpus round trip', { skip: dir ? false : 'no corpus (set MAILWARDEN_CORPUS or put it at ../shared/corpus)' }, () => {
  if (!dir) return;
  const files = corpusFiles(dir);
  const bySource = new Map<string, string[]>();
  for (const file of files) {
    const name = relative(dir, file);
    const group = name.split(/[\\/]/)[0] ?? name;
    bySource.set(group, [...(bySource.get(group) ?? []), file]);
  }

  it('finds the corpus files', () => {
    assert.ok(files.length > 0);
  });

  for (const [group, groupFiles] of bySource) {
    it(`${group} (${groupFiles.length} files)`, async () => {
      const failures: string[] = [];
      for (const file of groupFiles) {
        try {
          await checkFile(file, relative(dir, file));
        } catch (err) {
          failures.push((err as Error).message.split('\n')[0] ?? String(err));
        }
      }
      assert.deepEqual(failures, []);
    });
  }
});
