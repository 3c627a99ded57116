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
  archiveCase('zip-concatenated-clean-first', 'a clean zip with the payload zip appended after it', 'Concatenated ZIP (Perception Point, 2024): 7-Zip and Windows Explorer list the first archive, WinRAR and EOCD-from-the-end readers the second', (p) =>
    Buffer.concat([buildZip([{ name: 'readme.txt', data: Buffer.from('Nothing to see here.\r\n'.repeat(20)) }]), zipOf(p)])),
  archiveCase('zip-concatenated-payload-first', 'the payload zip with a clean zip appended after it', 'Concatenated ZIP the other way round: readers that take the last end-of-central-directory record see only the clean archive', (p) =>
    Buffer.concat([zipOf(p), buildZip([{ name: 'readme.txt', data: Buffer.from('Nothing to see here.\r\n'.repeat(20)) }])])),
  archiveCase('zip-duplicate-member-name', 'two members with the same name, a clean one and the payload', 'extractors overwrite (the last one wins) or ask; a scanner that keys members by name scans one of them', (p) =>
    buildZip([{ name: p.name, data: Buffer.from('harmless first copy\r\n'.repeat(10)) }, { name: p.name, data: p.bytes }])),
  archiveCase('gzip-truncated-trailer', 'gzip cut before its CRC and size trailer', 'gunzip extracts everything and then reports "unexpected end of file"; the data is all there', (p) => {
    const gz = gzipSync(p.bytes);
    return gz.subarray(0, gz.length - 8);
  }, 'payload.gz'),
  archiveCase('gzip-multi-member', 'gzip of a clean member followed by a member with the payload', 'RFC 1952 §2.2: a gzip file is a series of members; gunzip concatenates them, readers that stop after the first member see only clean text', (p) =>
    Buffer.concat([gzipSync(Buffer.from('harmless text\r\n'.repeat(10))), gzipSync(p.bytes)]), 'payload.gz'),
  archiveCase('tar-bad-checksum', 'tar whose header checksum is wrong', 'GNU tar and bsdtar still extract a member whose header checksum fails with --ignore-zeros/-i, and 7-Zip warns and extracts', (p) => {
    const tar = tarOf(p);
    tar.write('0000000\0 ', 148, 'latin1');
    return tar;
  }, 'payload.tar'),
  archiveCase('gzip-plain', 'gzip of the payload (ordinary, not damaged)', 'control: a plain gzip member; clamd unpacks gzip, so this must be detected like any attachment', (p) => gzipSync(p.bytes), 'payload.gz'),
  archiveCase('tar-plain', 'tar of the payload (ordinary, not damaged)', 'control: a plain ustar archive; clamd unpacks tar, so this must be detected like any attachment', (p) => tarOf(p), 'payload.tar'),
];
