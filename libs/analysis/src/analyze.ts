import type { Readable } from 'node:stream';
import type { MessagePart, PartVerdict } from '@mailwarden/contracts';
import { decodeSubject } from '@mailwarden/mime';
import { MemorySource, type ByteSource } from './byte-source.js';
import { looksBase64, scanBody, type BodyScan } from './body-scan.js';
import { blockContent, bodyContent, hashStream, materialize, sha256, shiftedBase64Content, uuBodyContent, type Content } from './content.js';
import { readHeaderBlock, values } from './header-block.js';
import { AnalysisLimitError, DEFAULT_LIMITS, type AnalysisLimits } from './limits.js';
import { parseEntity, splitBody, type AlternateSplit, type MimeEntity, type ParseContext } from './mime-tree.js';
import { signedDataContent } from './signed-data.js';

/** What the scanner's engine port says about one distinct content; throws on a transient failure. */
export type ScanContent = (content: { sha256: string; size: number; open(): Readable }) => Promise<PartVerdict>;

/** The scanner's own archive check (see @mailwarden/archive); injected so this library stays engine-free. */
export type CheckArchive = (bytes: Buffer) => { status: 'intact' | 'corrupt' | 'encrypted'; detail?: string; format: string; members: { name: string; content: Buffer; via: string }[] } | undefined;

export interface AnalyzeOptions {
  scan: ScanContent;
  checkArchive?: CheckArchive;
  /** Contents scanned at once. Default 4. */
  concurrency?: number;
  /**
   * Second opinion: also send the whole raw message to the engine (clamd parses mail itself). A
   * detection there that no part explains makes every part unscannable (policy antivirus.rawMessageScan).
   */
  rawScan?: boolean;
  limits?: Partial<AnalysisLimits>;
}

export interface Analysis {
  parts: MessagePart[];
  rootHeader: { start: number; end: number };
  subject?: string;
  /** Distinct contents sent to the engine. */
  scans: number;
}

interface Owner {
  path: string;
  kind: MessagePart['kind'];
  start: number;
  headerEnd: number;
  end: number;
  contentType: string;
  filename?: string;
  /** A leaf whose body is shown as it is (no transfer encoding): parts of it can be regions. */
  raw?: boolean;
  size?: number;
  sha256?: string;
  verdict?: PartVerdict;
}

type OwnerOf = (start: number, end: number) => string;

const SEVERITY: Record<PartVerdict['kind'], number> = { clean: 0, unscannable: 1, infected: 2, error: 3 };

/**
 * Derives every content a client could open from the message, under every reading of its
 * structure and encodings, scans each distinct one once, and maps each finding to the part of the
 * main reading whose removal removes it (see docs/architecture.md, "Content analysis").
 */
export async function analyzeMessage(source: ByteSource, opts: AnalyzeOptions): Promise<Analysis> {
  return new Analyzer(source, opts).run();
}

class Analyzer {
  private readonly limits: AnalysisLimits;
  private readonly owners: Owner[] = [];
  private readonly byPath = new Map<string, Owner>();
  private readonly queue: Content[] = [];
  private readonly verdicts = new Map<string, Promise<PartVerdict>>();
  private readonly splits = new Set<string>();
  private contents = 0;
  private scans = 0;

  constructor(
    private readonly source: ByteSource,
    private readonly opts: AnalyzeOptions,
  ) {
    this.limits = { ...DEFAULT_LIMITS, ...opts.limits };
  }

  async run(): Promise<Analysis> {
    const root = await parseEntity(this.ctx(this.source), 0, this.source.size, '1', 0);
    this.index(root);
    await this.derive(this.source, root, (s, e) => this.ownerOf(s, e), 0, true);
    await this.drain();
    if (this.opts.rawScan) await this.secondOpinion();
    const subject = decodeSubject(values(root.header, 'subject')[0]);
    return {
      parts: this.owners.map((o) => ({
        path: o.path,
        kind: o.kind,
        range: { start: o.start, end: o.end },
        headerEnd: o.headerEnd,
        contentType: o.contentType,
        ...(o.filename ? { filename: o.filename } : {}),
        size: o.size ?? o.end - o.headerEnd,
        sha256: o.sha256 ?? '',
        verdict: o.verdict ?? { kind: 'clean' },
      })),
      rootHeader: { start: 0, end: root.headerEnd },
      ...(subject !== undefined ? { subject } : {}),
      scans: this.scans,
    };
  }

  private async secondOpinion(): Promise<void> {
    const source = this.source;
    const bytes = source instanceof MemorySource ? source.bytes : undefined;
    const { sha256: hash, size } = bytes ? { sha256: sha256(bytes), size: bytes.length } : await hashStream(source.stream(0, source.size));
    this.scans++;
    const v = await this.opts.scan({ sha256: hash, size, open: () => source.stream(0, source.size) });
    if (v.kind === 'error') throw new Error(`scan of the whole message failed: ${v.detail ?? 'error'}`);
    if (v.kind !== 'infected' || this.owners.some((o) => o.verdict?.kind === 'infected')) return;
    // the engine sees something our readings do not explain: no part can be trusted
    for (const o of this.owners) {
      if (o.kind !== 'leaf' || (o.verdict && o.verdict.kind !== 'clean')) continue;
      o.verdict = { kind: 'unscannable', reason: 'corrupt', detail: `Mailwarden.RawMessage.${v.detail ?? 'Detection'}`, source: 'whole message scanned by the engine', ...(v.engine ? { engine: v.engine } : {}) };
    }
  }

  private ctx(source: ByteSource): ParseContext {
    return { source, limits: this.limits, count: 0 };
  }

  /** The main reading's nodes and regions become the part map. */
  private index(e: MimeEntity): void {
    const raw = e.kind === 'leaf' && e.decodings.every((d) => d === 'identity');
    this.addOwner({ path: e.path, kind: e.kind, start: e.start, headerEnd: e.headerEnd, end: e.end, contentType: e.contentType, ...(e.filename ? { filename: e.filename } : {}), ...(raw ? { raw } : {}) });
    for (const r of e.regions) this.addOwner({ path: r.path, kind: 'region', start: r.start, headerEnd: r.start, end: r.end, contentType: 'text/plain' });
    for (const c of e.children) this.index(c);
  }

  private addOwner(o: Owner): Owner {
    const existing = this.byPath.get(o.path);
    if (existing) return existing;
    this.owners.push(o);
    this.byPath.set(o.path, o);
    return o;
  }

  /** The smallest node of the main reading whose range holds [start, end). */
  private ownerOf(start: number, end: number): string {
    let best: Owner | undefined;
    for (const o of this.owners) {
      if (o.start <= start && end <= o.end && (!best || o.end - o.start < best.end - best.start || (o.end - o.start === best.end - best.start && o.path.length > best.path.length))) best = o;
    }
    return best?.path ?? '1';
  }

  /** Queues every content of `e` (any reading); `ownerOf` maps source ranges to part-map paths. */
  private async derive(source: ByteSource, e: MimeEntity, ownerOf: OwnerOf, depth: number, main: boolean): Promise<void> {
    if (e.kind === 'leaf') await this.deriveLeaf(source, e, ownerOf, depth, main);
    for (const c of e.children) await this.derive(source, c, ownerOf, depth, main);
    for (const r of e.regions) await this.deriveText(source, r.start, r.end, main ? () => r.path : ownerOf, depth, `text of ${r.path.split('.').pop()}`, main);
    for (const alt of e.alternates) await this.deriveAlternate(source, alt, ownerOf, depth);
    if (e.bodyAsText) await this.deriveText(source, e.headerEnd, e.end, ownerOf, depth, `body of ${e.contentType} read as one part`, false);
    if (e.kind === 'container' && e.decodings.some((d) => d !== 'identity')) {
      // a container with a transfer encoding (not allowed, RFC 2045 §6.4): some clients decode first
      for (const d of e.decodings) {
        if (d === 'identity' || d === 'uu') continue;
        this.push({ owner: ownerOf(e.start, e.end), label: `${e.contentType} decoded as ${d}`, estimate: e.end - e.headerEnd, open: bodyContent(source, e.headerEnd, e.end, d), decoded: true, depth });
      }
    }
  }

  private async deriveAlternate(source: ByteSource, alt: AlternateSplit, ownerOf: OwnerOf, depth: number): Promise<void> {
    const key = `${alt.start}:${alt.end}:${alt.boundary}:${alt.ignoreClose}:${alt.caseInsensitive ?? false}:${source === this.source ? 'raw' : 'nested'}`;
    if (this.splits.has(key)) return;
    this.splits.add(key);
    if (this.splits.size > this.limits.maxParts) throw new AnalysisLimitError('too many ambiguous MIME structures');
    const split = await splitBody(source, alt.start, alt.end, alt.boundary, alt.ignoreClose, alt.caseInsensitive);
    const ctx = this.ctx(source);
    for (const part of split.parts) {
      // the same bytes as a node of the main reading parse the same way: already derived
      if (source === this.source && this.owners.some((o) => o.kind !== 'region' && o.start === part.start && o.end === part.end)) continue;
      const entity = await parseEntity(ctx, part.start, part.end, 'alt', depth + 1, alt.defaultType);
      await this.derive(source, entity, ownerOf, depth + 1, false);
    }
    if (split.epilogue) await this.deriveText(source, split.epilogue.start, split.epilogue.end, ownerOf, depth, `epilogue (${alt.why})`, false);
  }

  /** A leaf: its body under every transfer-encoding reading, and what hides in its text. */
  private async deriveLeaf(source: ByteSource, e: MimeEntity, ownerOf: OwnerOf, depth: number, main: boolean): Promise<void> {
    const owner = main ? e.path : this.altOwner(source, e, ownerOf);
    const raw = e.decodings.every((d) => d === 'identity');
    // blocks and base64 runs in text a client shows as it is: removable on their own in a raw body
    const blockOwner: OwnerOf = raw && main && source === this.source ? (s, en) => this.region(`${e.path}.r${s}`, s, en) : () => owner;
    await this.deriveBody(source, e.headerEnd, e.end, e.decodings, owner, blockOwner, depth, main);
    // a line of blanks (or a line that is no header) ends the header block for lenient parsers
    for (const at of [e.header.blankAt, e.header.malformedAt]) {
      if (at !== undefined && at < e.end && at !== e.headerEnd) await this.deriveBody(source, at, e.end, e.decodings, owner, () => owner, depth, false);
    }
  }

  /**
   * An alternative reading's leaf: owned by the smallest node of the main reading that holds it;
   * when that is a raw text leaf of the main reading, the alternative part is a region of it
   * (removable without the text around it).
   */
  private altOwner(source: ByteSource, e: MimeEntity, ownerOf: OwnerOf): string {
    const path = ownerOf(e.start, e.end);
    const holder = source === this.source ? this.byPath.get(path) : undefined;
    if (holder?.kind === 'leaf' && holder.raw && e.start >= holder.headerEnd) return this.region(`${holder.path}.r${e.start}`, e.start, e.end);
    return path;
  }

  private async deriveBody(source: ByteSource, start: number, end: number, declared: string[], owner: string, blockOwner: OwnerOf, depth: number, main: boolean): Promise<void> {
    const scan = await scanBody(source, start, end);
    const decodings = new Set<string>(declared);
    if (looksBase64(scan)) decodings.add('base64');
    if (scan.qpHints > 0 && decodings.has('identity')) decodings.add('qp');
    if (decodings.has('base64') && scan.midPadding) decodings.add('base64-ignore-padding');
    const size = end - start;
    let first = true;
    for (const d of decodings) {
      const isMain = main && first;
      first = false;
      if (d === 'uu') {
        if (!scan.blocks.length) this.push({ owner, label: 'uuencoded body', estimate: size, open: uuBodyContent(source, start, end), depth, decoded: true, ...(isMain ? { main: true } : {}) });
        else if (isMain) this.push({ owner, label: 'body', estimate: size, open: bodyContent(source, start, end, 'identity'), depth, main: true });
        continue;
      }
      const label = d === 'identity' ? 'body' : `body decoded as ${d}${declared.includes(d) ? '' : ' (not what its header says)'}`;
      const guessedQp = d === 'qp' && !declared.includes('qp');
      this.push({ owner, label, estimate: size, open: bodyContent(source, start, end, d as 'identity'), depth, ...(d !== 'identity' ? { decoded: true } : {}), ...(guessedQp ? { sniffInside: false } : {}), ...(isMain ? { main: true } : {}) });
    }
    this.deriveBlocks(source, scan, start, end, blockOwner, depth);
  }

  /** Preamble, epilogue or any text region: raw, and whatever encodings hide inside. */
  private async deriveText(source: ByteSource, start: number, end: number, ownerOf: OwnerOf, depth: number, label: string, main: boolean): Promise<void> {
    const scan = await scanBody(source, start, end);
    if (!scan.nonBlank && !scan.blocks.length) return;
    const owner = ownerOf(start, end);
    this.push({ owner, label, estimate: end - start, open: bodyContent(source, start, end, 'identity'), depth });
    if (looksBase64(scan)) this.push({ owner, label: `${label} decoded as base64`, estimate: end - start, open: bodyContent(source, start, end, 'base64'), depth, decoded: true });
    const blockOwner: OwnerOf = main && source === this.source ? (s, e) => this.region(`${owner}.r${s}`, s, e) : ownerOf;
    this.deriveBlocks(source, scan, start, end, blockOwner, depth);
  }

  /** Encoded blocks and base64 runs inside a text, each owned by `ownerOf` of its own range. */
  private deriveBlocks(source: ByteSource, scan: BodyScan, start: number, end: number, ownerOf: OwnerOf, depth: number): void {
    for (const block of scan.blocks) {
      this.push({ owner: ownerOf(block.start, block.end), label: block.via ?? `${block.kind === 'uu' ? 'uuencoded' : block.kind === 'yenc' ? 'yEnc' : 'begin-base64'} block`, estimate: block.end - block.start, open: blockContent(source, block), depth, decoded: true });
    }
    for (const run of scan.runs) {
      if (run.start <= start && run.end >= end) continue;
      const owner = ownerOf(run.start, run.end);
      this.push({ owner, label: 'base64 lines in text', estimate: run.end - run.start, open: bodyContent(source, run.start, run.end, 'base64'), depth, decoded: true });
      // a lenient run may have taken in a line that is not base64: try the other three alignments too
      if (run.lenient) for (const skip of [1, 2, 3]) this.push({ owner, label: `base64 lines in text, from character ${skip}`, estimate: run.end - run.start, open: shiftedBase64Content(source, run.start, run.end, skip), depth, decoded: true });
    }
  }

  private region(path: string, start: number, end: number): string {
    return this.addOwner({ path, kind: 'region', start, headerEnd: start, end, contentType: 'text/plain' }).path;
  }

  private push(c: Content): void {
    if (++this.contents > this.limits.maxContents) throw new AnalysisLimitError(`more than ${this.limits.maxContents} contents to scan`);
    if (c.depth > this.limits.maxDepth) throw new AnalysisLimitError(`contents nested deeper than ${this.limits.maxDepth}`);
    this.queue.push(c);
  }

  /** Scans the queue, a few at once; contents found inside contents join the queue. */
  private async drain(): Promise<void> {
    const workers = Array.from({ length: Math.max(1, this.opts.concurrency ?? 4) }, async () => {
      for (let c = this.queue.shift(); c; c = this.queue.shift()) await this.judge(c);
    });
    await Promise.all(workers);
    if (this.queue.length) await this.drain();
  }

  private async judge(c: Content): Promise<void> {
    const bytes = c.estimate <= this.limits.maxMaterializeBytes ? await materialize(c.open(), this.limits.maxMaterializeBytes) : undefined;
    const { sha256: hash, size } = bytes ? { sha256: sha256(bytes), size: bytes.length } : await hashStream(c.open());
    const owner = this.byPath.get(c.owner);
    if (c.main && owner) {
      owner.size = size;
      owner.sha256 = hash;
    }
    let verdict = this.verdicts.get(hash);
    const first = !verdict;
    if (!verdict) {
      this.scans++;
      verdict = this.opts.scan({ sha256: hash, size, open: bytes ? () => new MemorySource(bytes).stream(0, bytes.length) : c.open });
      verdict.catch(() => undefined);
      this.verdicts.set(hash, verdict);
    }
    this.record(c, await verdict);
    if (!first || !bytes || !size) return;
    await this.inspect(c, bytes);
  }

  /** What a decoded content may still hide: a damaged archive's members, an embedded message, encoded text. */
  private async inspect(c: Content, bytes: Buffer): Promise<void> {
    const archive = this.opts.checkArchive?.(bytes);
    if (archive?.status === 'corrupt') {
      this.record(c, { kind: 'unscannable', reason: 'corrupt', detail: `Mailwarden.Archive.Corrupt (${archive.format}: ${archive.detail ?? 'damaged'})`, source: c.label });
    }
    for (const m of archive?.members ?? []) {
      this.push({ owner: c.owner, label: `${m.name} recovered from ${archive!.format} (${m.via})`, estimate: m.content.length, open: () => new MemorySource(m.content).stream(0, m.content.length), depth: c.depth + 1, decoded: true });
    }
    if (archive) return;
    const signed = signedDataContent(bytes);
    if (signed) {
      this.push({ owner: c.owner, label: `${c.label}, content of its S/MIME signature`, estimate: signed.length, open: () => new MemorySource(signed).stream(0, signed.length), depth: c.depth + 1, decoded: true });
      return;
    }
    const nested = new MemorySource(bytes);
    if (await looksLikeMessage(nested)) {
      const root = await parseEntity(this.ctx(nested), 0, bytes.length, 'nested', c.depth + 1);
      await this.derive(nested, root, () => c.owner, c.depth + 1, false);
      return;
    }
    if (c.decoded && c.sniffInside !== false && looksLikeText(bytes)) {
      const scan = await scanBody(nested, 0, bytes.length);
      this.deriveBlocks(nested, scan, 0, bytes.length, () => c.owner, c.depth + 1);
      if (c.label.startsWith('body') && looksBase64(scan) && scan.runs.length !== 1) {
        this.push({ owner: c.owner, label: `${c.label}, then as base64`, estimate: bytes.length, open: bodyContent(nested, 0, bytes.length, 'base64'), depth: c.depth + 1, decoded: true });
      }
    }
  }

  private record(c: Content, v: PartVerdict): void {
    if (v.kind === 'error') throw new Error(`scan of ${c.owner} (${c.label}) failed: ${v.detail ?? 'error'}`);
    const owner = this.byPath.get(c.owner);
    if (!owner) return;
    if (!owner.verdict || SEVERITY[v.kind] > SEVERITY[owner.verdict.kind]) owner.verdict = { ...v, source: c.label };
  }
}

/** Starts with a header block that says MIME things: a client opening it (.eml) parses it as a message. */
async function looksLikeMessage(source: ByteSource): Promise<boolean> {
  const head = await source.read(0, Math.min(source.size, 256));
  if (!/^[\x21-\x39\x3b-\x7e]+[ \t]*:/.test(head.toString('latin1'))) return false;
  try {
    const block = await readHeaderBlock(source, 0, source.size, 64 * 1024);
    if (block.bodyStart >= source.size && block.fields.length < 2) return false;
    return block.fields.some((f) => f.name === 'content-type' || f.name === 'content-transfer-encoding' || f.name === 'mime-version');
  } catch {
    return false;
  }
}

function looksLikeText(bytes: Buffer): boolean {
  const head = bytes.subarray(0, 1024);
  for (const c of head) if (c === 0 || (c < 0x09 && c !== 0x1b)) return false;
  return true;
}
