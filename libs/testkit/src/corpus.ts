import { existsSync, readdirSync, statSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

/**
 * Where the shared corpus of real-world and malformed messages is: $MAILWARDEN_CORPUS, else
 * ../shared/corpus next to the repository. CI has it, a user's clone does not: tests skip without it.
 */
export function corpusDir(): string | undefined {
  const repoRoot = resolve(dirname(fileURLToPath(import.meta.url)), '../../../..');
  const dir = process.env.MAILWARDEN_CORPUS ?? resolve(repoRoot, '../shared/corpus');
  return existsSync(join(dir, 'MANIFEST.tsv')) ? dir : undefined;
}

/** Every message file of the corpus, sorted (README, MANIFEST and licences left out). */
export function corpusFiles(dir: string): string[] {
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
