import { existsSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { parseVerifierKey, type NoteVerifier } from '../core/note.js';
import { readVerifierKeyFile } from '../keyfiles.js';
import { UsageError } from './usage.js';

const DEV_KEYS = './.sealtrail/keys';

/** The key directory: --keys DIR, else ./.sealtrail/keys when no --vkey is given and it exists. */
export function keysDirOf(keysDir: string | undefined, vkeyFiles: readonly string[]): string | undefined {
  const dir = keysDir ?? (vkeyFiles.length === 0 && existsSync(DEV_KEYS) ? DEV_KEYS : undefined);
  if (dir !== undefined && !existsSync(dir)) throw new UsageError(`--keys ${dir}: no such directory`);
  return dir;
}

/** Verifier keys from --keys DIR (every *.vkey) and --vkey FILE; ./.sealtrail/keys when neither is given. */
export function loadVerifierKeys(keysDir: string | undefined, vkeyFiles: readonly string[]): { vkey: string; verifier: NoteVerifier }[] {
  const files = [...vkeyFiles];
  const dir = keysDirOf(keysDir, vkeyFiles);
  if (dir !== undefined) {
    for (const f of readdirSync(dir).sort()) if (f.endsWith('.vkey')) files.push(join(dir, f));
  }
  return files.map((f) => {
    try {
      const vkey = readVerifierKeyFile(f);
      return { vkey, verifier: parseVerifierKey(vkey) };
    } catch (err) {
      throw new UsageError(`${f}: not a signed-note verifier key (${(err as Error).message})`);
    }
  });
}

export const NO_VERIFIER_KEYS = 'no verifier keys: pass --keys DIR (holding *.vkey files) or --vkey FILE';
