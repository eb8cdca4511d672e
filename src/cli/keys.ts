import { existsSync, readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { ConfigError } from '../core/errors.js';
import { parseVerifierKey, type NoteVerifier } from '../core/note.js';
import { fileError } from '../fs/file-errors.js';
import { readVerifierKeyFile, VERIFIER_KEY_EXT } from '../keyfiles.js';
import { UsageError } from './usage.js';

const DEV_KEYS = './.sealtrail/keys';

/** The key directory: --keys DIR, else ./.sealtrail/keys when no --vkey is given and it exists. */
export function keysDirOf(keysDir: string | undefined, vkeyFiles: readonly string[]): string | undefined {
  const dir = keysDir ?? (vkeyFiles.length === 0 && existsSync(DEV_KEYS) ? DEV_KEYS : undefined);
  if (dir === undefined) return undefined;
  if (!existsSync(dir)) throw new UsageError(`--keys ${dir}: no such directory`);
  let isDir: boolean;
  try {
    isDir = statSync(dir).isDirectory();
  } catch (err) {
    throw fileError(err, dir, '--keys', 'read');
  }
  if (!isDir) throw new UsageError(`--keys ${dir}: not a directory (name the directory holding *.vkey files; one key file is --vkey FILE)`);
  return dir;
}

/** Verifier keys from --keys DIR (every *.vkey) and --vkey FILE; ./.sealtrail/keys when neither is given. */
export function loadVerifierKeys(keysDir: string | undefined, vkeyFiles: readonly string[]): { vkey: string; verifier: NoteVerifier }[] {
  const files = vkeyFiles.map((f) => ({ f, what: 'verifier key file (--vkey)' }));
  const dir = keysDirOf(keysDir, vkeyFiles);
  if (dir !== undefined) {
    let names: string[];
    try {
      names = readdirSync(dir);
    } catch (err) {
      throw fileError(err, dir, '--keys', 'list');
    }
    const found = names.filter((f) => f.endsWith(VERIFIER_KEY_EXT)).sort();
    if (found.length === 0 && files.length === 0) throw new UsageError(`--keys ${dir}: holds no *${VERIFIER_KEY_EXT} file; ${NO_VERIFIER_KEYS}`);
    for (const f of found) files.push({ f: join(dir, f), what: `verifier key file (--keys ${dir})` });
  }
  return files.map(({ f, what }) => {
    let vkey: string;
    try {
      vkey = readVerifierKeyFile(f, what);
    } catch (err) {
      // A file that cannot be read says so itself (key_file_*, exit 1); only one that reads but is no verifier key is a usage error.
      if (err instanceof ConfigError && err.code === 'key_file_invalid') throw new UsageError(err.message);
      throw err;
    }
    return { vkey, verifier: parseVerifierKey(vkey) };
  });
}

export const NO_VERIFIER_KEYS = 'no verifier keys: pass --keys DIR (holding *.vkey files) or --vkey FILE';
