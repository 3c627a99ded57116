/** Damaged archives clamd lets through (see FACTS.md, "ClamAV's blind spots") while unzip tools still extract. */
import { gzipSync } from 'node:zlib';
import { buildZip } from '@mailwarden/testkit';
import { attachmentPart, marker, mixed, textPart, type EvasionCase, type Payload } from '../build.js';

const CLAMD_OK = 'clamd 1.4.6 answers OK for it and misses the member (FACTS.md "ClamAV\'s blind spots")';

const zipOf = (p: Payload): Buffer => buildZip([{ name: p.name, data: p.bytes }]);
/** Offset of the central directory (from the end-of-central-directory record of a buildZip archive). */
const cdOffset = (zip: Buffer): number => zip.readUInt32LE(zip.length - 22 + 16);

/** A clean text part and `archive` as a base64 attachment named `name`. */
const archiveCase = (id: string, title: string, trick: string, archive: (p: Payload) => Buffer, name = 'archive.zip', opts: Partial<EvasionCase> = {}): EvasionCase => ({
  id,
  title,
  trick,
  clean: [marker(id)],
  build: (p) => mixed(id, [textPart(marker(id)), attachmentPart({ name, bytes: archive(p) })]),
  ...opts,
});

/** A POSIX ustar archive with one member (enough for tar and clamd). */
function tarOf(p: Payload): Buffer {
  const header = Buffer.alloc(512);
  header.write(p.name, 0, 100, 'latin1');
  header.write('0000644\0', 100, 'latin1');
  header.write('0000000\0', 108, 'latin1');
  header.write('0000000\0', 116, 'latin1');
  header.write(`${p.bytes.length.toString(8).padStart(11, '0')}\0`, 124, 'latin1');
  header.write('14700000000\0', 136, 'latin1');
  header.write('        ', 148, 'latin1');
  header.write('0', 156, 'latin1');
  header.write('ustar\0', 257, 'latin1');
  header.write('00', 263, 'latin1');
  let sum = 0;
  for (const b of header) sum += b;
  header.write(`${sum.toString(8).padStart(6, '0')}\0 `, 148, 'latin1');
  const body = Buffer.alloc(Math.ceil(p.bytes.length / 512) * 512);
  p.bytes.copy(body);
  return Buffer.concat([header, body, Buffer.alloc(1024)]);
}

export const archiveCases: EvasionCase[] = [
  archiveCase('zip-zeroed-local-header', 'zip whose local file header is zeroed (central directory intact)', `local header signature, CRC and sizes zeroed; the central directory still locates the data: ${CLAMD_OK}; carving from the central directory recovers it`, (p) => {
    const zip = zipOf(p);
    zip.fill(0, 0, 30);
    return zip;
  }),
  archiveCase('zip-truncated-before-eocd', 'zip cut before its end-of-central-directory record', `no EOCD record (transfer cut or deliberate): ${CLAMD_OK}; unzip -FF, 7-Zip and local-header scanning still extract the member`, (p) => {
    const zip = zipOf(p);
    return zip.subarray(0, zip.length - 22);
  }),
  archiveCase('zip-truncated-no-central-directory', 'zip cut right after the member data', `only the local header and data remain (no central directory, no EOCD): ${CLAMD_OK}; streaming extractors read local headers`, (p) => {
    const zip = zipOf(p);
    return zip.subarray(0, cdOffset(zip));
  }),
  archiveCase('zip-unknown-method', 'zip member declaring an unknown compression method', `method 33 in both headers over deflate data: ${CLAMD_OK}; a tool that tries deflate anyway (or a patched header) gets the member`, (p) => {
    const zip = zipOf(p);
    zip.writeUInt16LE(33, 8);
    zip.writeUInt16LE(33, cdOffset(zip) + 10);
    return zip;
  }),
  archiveCase('zip-bad-central-directory', 'zip with a garbage central directory (local header intact)', 'the central directory entry is overwritten: central-directory readers (clamd, Python zipfile) fail, local-header readers (Java ZipInputStream, streaming unzip) extract the member', (p) => {
    const zip = zipOf(p);
    const cd = cdOffset(zip);
    zip.fill(0x41, cd, zip.length - 22);
    return zip;
  }),
  archiveCase('zip-in-zip-inner-damaged', 'a zip inside a zip whose inner zip has a zeroed local header', `the outer zip is fine, the inner one is damaged: ${CLAMD_OK} for the inner archive, and a scanner that trusts clamd on the outer zip lets both through`, (p) => {
    const inner = zipOf(p);
    inner.fill(0, 0, 30);
    return buildZip([{ name: 'inner.zip', data: inner }]);
  }),
  archiveCase('zip-prepended-junk', 'zip with 4 KiB of junk before it (offsets not adjusted)', 'a self-extractor style prefix: readers that require the archive at offset 0 fail, EOCD-relative readers (unzip, Python zipfile) adjust and extract', (p) =>
    Buffer.concat([Buffer.alloc(4096, 0x5a), zipOf(p)])),
  archiveCase('gzip-plain', 'gzip of the payload (ordinary, not damaged)', 'control: a plain gzip member; clamd unpacks gzip, so this must be detected like any attachment', (p) => gzipSync(p.bytes), 'payload.gz'),
  archiveCase('tar-plain', 'tar of the payload (ordinary, not damaged)', 'control: a plain ustar archive; clamd unpacks tar, so this must be detected like any attachment', (p) => tarOf(p), 'payload.tar'),
];
