/**
 * Compression methods (APPNOTE 4.4.5) that clamd 1.4.x unpacks — libclamav/unzip.c handles
 * stored, implode, deflate, deflate64 and bzip2, and skips everything else ("unsupported
 * method"), LZMA included. A member in any other method is invisible to clamd.
 */
export const CLAMD_ZIP_METHODS: ReadonlySet<number> = new Set([0, 6, 8, 9, 12]);
export const METHOD_STORED = 0;
export const METHOD_DEFLATE = 8;
/** WinZip AES (APPNOTE appendix E): only meaningful together with the encryption flag. */
export const METHOD_AES = 99;
